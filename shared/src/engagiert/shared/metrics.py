"""Declares the Prometheus metrics the shared primitives update."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("engagiert_messages_consumed_total", "Records read by a consumer", ["topic", "group"])
APPLIED = Counter(
    "engagiert_messages_applied_total",
    "Valid records handed to the service's handler",
    ["topic", "group"],
)
DEAD_LETTERED = Counter(
    "engagiert_messages_dead_lettered_total",
    "Records sent to the dead-letter topic",
    ["topic", "group", "reason"],
)
RETRIES = Counter(
    "engagiert_handler_retries_total",
    "Handler attempts that failed and were retried",
    ["topic", "group"],
)
CONSUMER_LAG = Gauge(
    "engagiert_consumer_lag",
    "Records behind the partition's end after the last batch",
    ["topic", "partition", "group"],
)
BATCH_SECONDS = Histogram("engagiert_batch_seconds", "Time to handle one consumed batch", ["topic", "group"])
PUBLISHED = Counter("engagiert_records_published_total", "Records the broker acknowledged", ["topic"])
OUTBOX_PENDING = Gauge(
    "engagiert_outbox_pending_documents",
    "Documents with unpublished outbox entries",
    ["collection"],
)
OUTBOX_OLDEST_PENDING_SECONDS = Gauge(
    "engagiert_outbox_oldest_pending_seconds",
    "Age of the oldest unpublished outbox entry the relay's last batch saw (0 when none is pending)",
    ["collection"],
)
OUTBOX_SECONDS_SINCE_PROGRESS = Gauge(
    "engagiert_outbox_seconds_since_progress",
    "Seconds since the relay last drained every collection (0 while nothing is pending)",
)
DLQ_PUBLISH_FAILURES = Counter(
    "engagiert_dlq_publish_failures_total",
    "Attempts to publish a dead-letter record that failed (retried with backoff)",
    ["topic", "group", "error"],
)
CONSUMER_SECONDS_SINCE_PROGRESS = Gauge(
    "engagiert_consumer_seconds_since_progress",
    "Seconds since the consumer last committed a batch or finished waiting (0 while it has nothing pending)",
    ["topic", "group"],
)
RATE_LIMITED = Counter("engagiert_http_rate_limited_total", "Requests answered 429 by the rate limit", ["route"])

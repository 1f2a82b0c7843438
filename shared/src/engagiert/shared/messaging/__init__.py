"""Messaging primitives: outbox relay, idempotent batch consume with retries, dead-letter topic."""

from engagiert.shared.messaging.consumer import BatchHandler, PermanentError, Subscription, TransientError
from engagiert.shared.messaging.dlq import DLQ_HEADERS, dead_letter_headers
from engagiert.shared.messaging.outbox import OutboxRelay, outbox_fields, with_outbox
from engagiert.shared.messaging.publisher import RecordPublisher

__all__ = [
    "DLQ_HEADERS",
    "BatchHandler",
    "OutboxRelay",
    "PermanentError",
    "RecordPublisher",
    "Subscription",
    "TransientError",
    "dead_letter_headers",
    "outbox_fields",
    "with_outbox",
]

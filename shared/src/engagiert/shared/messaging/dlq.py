"""Builds dead-letter records: the original record plus headers that say who failed, why and where."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from engagiert.shared.logging import redact_text

H_GROUP = "dlq-consumer-group"
H_REASON = "dlq-reason"
H_ERROR = "dlq-error"
H_ATTEMPTS = "dlq-attempts"
H_TOPIC = "dlq-original-topic"
H_PARTITION = "dlq-original-partition"
H_OFFSET = "dlq-original-offset"
H_FAILED_AT = "dlq-failed-at"
DLQ_HEADERS = (H_GROUP, H_REASON, H_ERROR, H_ATTEMPTS, H_TOPIC, H_PARTITION, H_OFFSET, H_FAILED_AT)
"""The headers every dead-letter record carries besides the original record's own."""


def dead_letter_headers(
    *,
    original: list[tuple[str, bytes]],
    group: str,
    reason: str,
    error: str,
    attempts: int,
    topic: str,
    partition: int,
    offset: int,
) -> list[tuple[str, bytes]]:
    """Return the original headers (less old DLQ headers) plus this failure's DLQ headers.

    Args:
        original: the failed record's headers.
        group: the consumer group that gave up.
        reason: one word (``not-json``, ``invalid-data``, ``handler-error``, ...).
        error: a one-line explanation without personal data.
        attempts: how often the handler was tried (1 for records that could not be read).
        topic: the original topic.
        partition: the original partition.
        offset: the original offset.
    """
    kept = [(k, v) for k, v in original if k not in DLQ_HEADERS]
    extra = {
        H_GROUP: group,
        H_REASON: reason,
        H_ERROR: redact_text(error)[:1000],
        H_ATTEMPTS: str(attempts),
        H_TOPIC: topic,
        H_PARTITION: str(partition),
        H_OFFSET: str(offset),
        H_FAILED_AT: datetime.now(UTC).isoformat(),
    }
    return kept + [(k, v.encode()) for k, v in extra.items()]


def stub_record(record: Any, *, reason: str) -> bytes:
    """Return the small body that stands in for a record the dead-letter topic would not take."""
    return json.dumps(
        {
            "stub": True,
            "reason": reason,
            "original_topic": record.topic,
            "original_partition": record.partition,
            "original_offset": record.offset,
            "original_size": len(record.value or b""),
        },
        sort_keys=True,
    ).encode()

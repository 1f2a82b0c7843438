"""A consumer never stalls silently: failed dead-letter publishes are retried, logged and counted; stalls show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from prometheus_client import REGISTRY

from engagiert.shared.messaging.consumer import Subscription


@dataclass
class Rec:
    topic: str = "t.v1"
    partition: int = 0
    offset: int = 7
    key: bytes | None = b"k"
    value: bytes | None = b"x" * 2_000_000
    headers: tuple[tuple[str, bytes], ...] = (("traceparent", b"00-abc"),)


class FlakyBroker:
    """Refuses the first publishes the way a broker does: away twice, then 'too large' for big records."""

    def __init__(self) -> None:
        self.calls = 0
        self.published: list[tuple[bytes, dict[str, str]]] = []

    async def publish(self, value: bytes, topic: str, *, key: Any, headers: dict[str, str]) -> None:
        self.calls += 1
        if self.calls <= 2:
            raise KafkaConnectionError("broker away")
        if len(value) > 1_000_000:
            raise MessageSizeTooLargeError("too large")
        self.published.append((value, headers))


async def _nothing(_events: Any) -> None:
    return None


def _failures(error: str) -> float:
    value = REGISTRY.get_sample_value(
        "engagiert_dlq_publish_failures_total", {"topic": "t.v1", "group": "g-stall", "error": error}
    )
    return value or 0.0


async def test_a_record_the_dlq_never_takes_goes_as_a_stub_after_logged_retries() -> None:
    """Two outages are retried with backoff and counted; the too-large record becomes a stub with its reason."""
    sub = Subscription(topic="t.v1", handler=_nothing, group_id="g-stall", backoff_seconds=0.01)
    broker = FlakyBroker()
    sub._broker = broker  # type: ignore[assignment]
    before = _failures("KafkaConnectionError"), _failures("MessageSizeTooLargeError")
    await sub._dead_letter([(Rec(), "handler-error", "ValueError: boom", 5)])
    assert broker.calls == 4
    (value, headers) = broker.published[0]
    stub = json.loads(value)
    assert stub["stub"] is True
    assert stub["original_offset"] == 7
    assert stub["original_size"] == 2_000_000
    assert headers["dlq-reason"] == "handler-error"
    assert headers["dlq-stub-reason"].startswith("MessageSizeTooLargeError")
    assert "traceparent" not in headers
    assert _failures("KafkaConnectionError") - before[0] == 2
    assert _failures("MessageSizeTooLargeError") - before[1] == 1


def test_pending_work_without_progress_is_a_stall() -> None:
    """A batch in hand and no progress past the limit is a stall; idle is never one."""
    sub = Subscription(topic="t.v1", handler=_nothing, group_id="g-stall2")
    assert not sub.stalled(0.0)
    sub._busy = True
    sub._last_progress -= 30
    assert sub.seconds_since_progress() >= 30
    assert sub.stalled(10.0)
    assert not sub.stalled(60.0)
    sub._busy = False
    assert sub.seconds_since_progress() == 0.0

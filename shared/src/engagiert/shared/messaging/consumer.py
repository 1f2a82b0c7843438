"""Consumes a topic at least once and applies each event effectively once, with retries and a DLQ.

How one batch is handled (a FastStream batch subscriber with ``AckPolicy.MANUAL``):

1. Every record is read as a CloudEvent; one that cannot be read (not JSON, not a CloudEvent,
   unknown type, data breaking the contract) goes to ``<topic>.dlq`` with the reason. When the
   subscription has an ``admit`` check (who wrote the topic may do this?), the events it refuses
   go there too, with the reason ``not-authorised``, and have no effect.
2. The valid events, duplicates within the batch removed, go to the service's handler in one
   call, so it can write in bulk. The handler must be idempotent by event id (see
   :mod:`engagiert.shared.mongo` ``insert_new`` and :mod:`engagiert.shared.messaging.idempotency`).
3. When the store or the broker is away (a transient error), the batch is retried with backoff
   for as long as it takes: valid events never go to the DLQ for an outage.
4. When the handler fails otherwise, each event is retried alone, up to ``max_attempts`` with
   backoff; an event that still fails goes to the DLQ with the error and the attempt count.
5. Only then are the offsets committed. A crash before the commit re-delivers the batch;
   idempotent handlers make that harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from engagiert.shared.envelope import Envelope, EnvelopeError, parse_record
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.dlq import dead_letter_headers, stub_record
from engagiert.shared.metrics import (
    APPLIED,
    BATCH_SECONDS,
    CONSUMED,
    CONSUMER_LAG,
    CONSUMER_SECONDS_SINCE_PROGRESS,
    DEAD_LETTERED,
    DLQ_PUBLISH_FAILURES,
    RETRIES,
)
from engagiert.shared.mongo import is_transient_store_error
from engagiert.shared.topics import dlq

log = get_logger(__name__)

BatchHandler = Callable[[Sequence[Envelope[Any]]], Awaitable[None]]
"""Applies a batch of valid events idempotently; raises to have them retried."""
Admit = Callable[[Sequence[tuple[str, Envelope[Any]]]], Awaitable[Mapping[str, str]]]
"""Checks a batch of ``(topic, event)`` against the writer's authority; returns ``{event id: why refused}``."""
NOT_AUTHORISED = "not-authorised"


class TransientError(Exception):
    """Raised by a handler when a dependency is away for now: the batch is retried, never dead-lettered."""


class PermanentError(Exception):
    """Raised by a handler when an event can never apply (it names an unknown member, say): no retries, DLQ now."""


class _Stopping(Exception):
    """The service is shutting down while a batch still waits for a retry."""


UNPUBLISHABLE = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidMessageError,
    CorruptRecordException,
)
"""Errors that say 'this record can never be published': the dead-letter record becomes a stub."""


def is_transient(exc: BaseException) -> bool:
    """Return True for errors that say 'try again later', not 'this event is wrong'."""
    return isinstance(exc, TransientError | KafkaError | ConnectionError | TimeoutError) or is_transient_store_error(
        exc
    )


@dataclass(kw_only=True)
class Subscription:
    """One consumer of one topic: the group, the handler and the retry policy.

    Args:
        topic: the topic to consume (with ``pattern``: a name for metrics and logs).
        handler: applies a batch of valid events idempotently.
        group_id: the consumer group (one per service and topic purpose).
        max_records: the most records in one batch.
        max_attempts: attempts per event before it goes to the DLQ.
        backoff_seconds: the first retry's delay; it doubles up to ``max_backoff_seconds``.
    """

    topic: str
    handler: BatchHandler
    group_id: str
    max_records: int = 500
    max_attempts: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0
    batch_timeout_ms: int = 10
    """How long one poll waits for records. FastStream sleeps as long again after an empty poll, so
    an idle consumer saw a new record up to twice this late (it was 100: 200 ms on the write-to-
    read-model path, then 20); under load the polls return at once with what the fetcher has
    buffered. An idle subscription polls about 50 times a second from memory (the fetcher's
    long-poll to the broker is separate): a fraction of a percent of a core in `make bench`."""
    name: str = ""
    contract_topic: str | None = None
    """The topic the contracts name for the events (default: ``topic``); tests use other topics."""
    pattern: str | None = None
    """Consume every topic matching this regular expression instead of ``topic`` (new ones too)."""
    admit: Admit | None = None
    """Checks each valid event against the authority of whoever wrote its topic (None: all admitted)."""
    _stopping: bool = field(default=False, init=False)
    _running: bool = field(default=False, init=False)
    _last_batch_at: float = field(default=0.0, init=False)
    _last_progress: float = field(default_factory=time.monotonic, init=False)
    _busy: bool = field(default=False, init=False)
    _behind: bool = field(default=False, init=False)

    def register(self, broker: KafkaBroker) -> None:
        """Register this subscription on ``broker`` as a manual-ack batch subscriber."""

        async def _on_batch(_body: Any, msg: KafkaMessage) -> None:
            await self.handle_batch(msg)

        _on_batch.__name__ = self.name or f"consume_{self.topic.replace('.', '_')}"
        where: dict[str, Any] = {"pattern": self.pattern} if self.pattern else {}
        broker.subscriber(
            *(() if self.pattern else (self.topic,)),
            **where,
            group_id=self.group_id,
            batch=True,
            max_records=self.max_records,
            batch_timeout_ms=self.batch_timeout_ms,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            decoder=_raw_decoder,
            title=f"{self.group_id}:{self.topic}",
        )(_on_batch)
        self._broker = broker
        self._running = True
        CONSUMER_SECONDS_SINCE_PROGRESS.labels(topic=self.topic, group=self.group_id).set_function(
            self.seconds_since_progress
        )

    @property
    def pending(self) -> bool:
        """Return True while a batch is in hand or the last batch left the partition behind its end."""
        return self._busy or self._behind

    def seconds_since_progress(self) -> float:
        """Return the seconds since the last progress while work is pending, else 0."""
        return time.monotonic() - self._last_progress if self.pending else 0.0

    def stalled(self, limit_seconds: float) -> bool:
        """Return True when work is pending and nothing moved for ``limit_seconds``."""
        return self.seconds_since_progress() > limit_seconds

    def _progressed(self) -> None:
        self._last_progress = time.monotonic()

    def stop(self) -> None:
        """Ask waiting retries to give up so the service can stop (the batch is not committed)."""
        self._stopping = True

    @property
    def running(self) -> bool:
        """Return True while the subscription is registered and not stopping."""
        return self._running and not self._stopping

    async def handle_batch(self, msg: KafkaMessage) -> None:
        """Handle one consumed batch and commit it; re-deliver it when the service stops midway."""
        raw = msg.raw_message
        records: Sequence[Any] = raw if isinstance(raw, tuple) else (raw,)
        started = time.perf_counter()
        if not self._busy and not self._behind:
            self._progressed()  # idle until now: the clock starts with this batch
        self._busy = True
        try:
            await self._process(records)
        except _Stopping:
            await msg.nack()  # seek back: the next owner of the partition starts at this batch
            return
        except BaseException:
            await msg.nack()
            raise
        finally:
            self._busy = False
        await msg.ack()
        self._progressed()
        self._last_batch_at = time.monotonic()
        BATCH_SECONDS.labels(topic=self.topic, group=self.group_id).observe(time.perf_counter() - started)
        self._record_lag(msg, records)

    async def _process(self, records: Sequence[Any]) -> None:
        CONSUMED.labels(topic=self.topic, group=self.group_id).inc(len(records))
        valid: list[tuple[Any, Envelope[Any]]] = []
        seen: set[str] = set()
        dead: list[tuple[Any, str, str, int]] = []
        for rec in records:
            try:
                env = parse_record(
                    value=rec.value,
                    headers=rec.headers,
                    key=rec.key,
                    expected_topic=self.contract_topic or self.topic,
                )
            except EnvelopeError as exc:
                dead.append((rec, exc.reason, exc.detail, 1))
                continue
            if env.id in seen:
                continue
            seen.add(env.id)
            valid.append((rec, env))
        if valid and self.admit is not None:
            refused = await self._admitted(valid)
            dead.extend((rec, NOT_AUTHORISED, refused[env.id], 1) for rec, env in valid if env.id in refused)
            valid = [(rec, env) for rec, env in valid if env.id not in refused]
        if valid:
            dead.extend(await self._apply(valid))
            APPLIED.labels(topic=self.topic, group=self.group_id).inc(len(valid))
        if dead:
            await self._dead_letter(dead)

    async def _admitted(self, valid: list[tuple[Any, Envelope[Any]]]) -> Mapping[str, str]:
        """Return the refused events' reasons; while the check's store is away, wait and ask again."""
        assert self.admit is not None
        delay = self.backoff_seconds
        while True:
            try:
                return await self.admit([(rec.topic, env) for rec, env in valid])
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("admit_transient_error", topic=self.topic, error=type(exc).__name__, retry_in=delay)
                await self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)

    async def _apply(self, valid: list[tuple[Any, Envelope[Any]]]) -> list[tuple[Any, str, str, int]]:
        """Apply the batch; on failure retry each event alone; return the events given up on."""
        try:
            await self._retry_transient([env for _, env in valid])
            return []
        except _Stopping:
            raise
        except Exception as exc:
            first_error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, PermanentError) and len(valid) == 1:
                log.warning("event_dead_lettered", topic=self.topic, event_id=valid[0][1].id, type=valid[0][1].type)
                return [(valid[0][0], "handler-rejected", first_error, 1)]
            RETRIES.labels(topic=self.topic, group=self.group_id).inc()
        # Alone, a single event has had its first attempt already; in a batch, nobody knows which failed.
        already = 1 if len(valid) == 1 else 0
        given_up: list[tuple[Any, str, str, int]] = []
        for rec, env in valid:
            error = await self._attempt_alone(env, already=already, last_error=first_error)
            if error is not None:
                reason = "handler-rejected" if error.startswith("PermanentError") else "handler-error"
                given_up.append((rec, reason, error, self.max_attempts))
                log.warning("event_dead_lettered", topic=self.topic, event_id=env.id, type=env.type)
        return given_up

    async def _attempt_alone(self, env: Envelope[Any], *, already: int, last_error: str) -> str | None:
        """Try one event until it applies or ``max_attempts`` is used up; return the last error or None."""
        attempts = already
        delay = self.backoff_seconds
        while attempts < self.max_attempts:
            if attempts:
                await self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)
            attempts += 1
            try:
                await self._retry_transient([env])
                return None
            except _Stopping:
                raise
            except PermanentError as exc:
                return f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                RETRIES.labels(topic=self.topic, group=self.group_id).inc()
        return last_error

    async def _retry_transient(self, events: list[Envelope[Any]]) -> None:
        """Call the handler; while the error is transient, wait and call it again."""
        delay = self.backoff_seconds
        while True:
            try:
                await self.handler(events)
                self._progressed()
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "handler_transient_error",
                    topic=self.topic,
                    error=type(exc).__name__,
                    retry_in=delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            raise _Stopping
        await asyncio.sleep(seconds)
        if self._stopping:
            raise _Stopping

    async def _dead_letter(self, dead: list[tuple[Any, str, str, int]]) -> None:
        for rec, reason, error, attempts in dead:
            headers = dead_letter_headers(
                original=list(rec.headers or []),
                group=self.group_id,
                reason=reason,
                error=error,
                attempts=attempts,
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
            )
            await self._publish_dead_letter(rec, headers=headers, reason=reason)
            DEAD_LETTERED.labels(topic=self.topic, group=self.group_id, reason=reason).inc()
            log.warning(
                "record_dead_lettered",
                topic=self.topic,
                partition=rec.partition,
                offset=rec.offset,
                reason=reason,
                attempts=attempts,
            )

    async def _publish_dead_letter(self, rec: Any, *, headers: list[tuple[str, bytes]], reason: str) -> None:
        """Publish ``rec`` to the DLQ until the broker takes it; a record it never takes goes as a stub."""
        value: bytes = rec.value or b""
        delay = self.backoff_seconds
        failures = 0
        while True:
            try:
                await self._broker.publish(
                    value,
                    dlq(rec.topic),  # the DLQ of the topic the record came from (one per topic of a pattern)
                    key=rec.key,
                    headers={k: v.decode("utf-8", "replace") for k, v in headers},
                )
                return
            except _Stopping:
                raise
            except UNPUBLISHABLE as exc:
                DLQ_PUBLISH_FAILURES.labels(topic=self.topic, group=self.group_id, error=type(exc).__name__).inc()
                if value == (stub := stub_record(rec, reason=reason)):
                    log.error("dead_letter_stub_refused", topic=self.topic, offset=rec.offset, error=type(exc).__name__)
                    raise
                log.error(
                    "dead_letter_unpublishable",
                    topic=self.topic,
                    partition=rec.partition,
                    offset=rec.offset,
                    size=len(value),
                    error=type(exc).__name__,
                    action="publishing a stub with the reason instead",
                )
                value, headers = stub, [(k, v) for k, v in headers if k.startswith("dlq-")]
                headers.append(
                    ("dlq-stub-reason", f"{type(exc).__name__}: the original record was not publishable".encode())
                )
            except Exception as exc:
                failures += 1
                DLQ_PUBLISH_FAILURES.labels(topic=self.topic, group=self.group_id, error=type(exc).__name__).inc()
                log.warning(
                    "dead_letter_publish_failed",
                    topic=self.topic,
                    partition=rec.partition,
                    offset=rec.offset,
                    error=type(exc).__name__,
                    failures=failures,
                    retry_in=delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)

    def _record_lag(self, msg: KafkaMessage, records: Sequence[Any]) -> None:
        consumer = getattr(msg, "consumer", None)
        if consumer is None or not hasattr(consumer, "highwater"):
            return
        last: dict[tuple[str, int], int] = {}
        for rec in records:
            last[(rec.topic, rec.partition)] = rec.offset
        from aiokafka import TopicPartition

        behind = False
        for (topic, partition), offset in last.items():
            high = consumer.highwater(TopicPartition(topic, partition))
            if high is not None:
                lag = max(high - offset - 1, 0)
                behind = behind or lag > 0
                CONSUMER_LAG.labels(topic=topic, partition=str(partition), group=self.group_id).set(lag)
        self._behind = behind


async def _raw_decoder(msg: Any) -> Any:
    """Leave bodies undecoded: the consumer reads each record as a CloudEvent itself."""
    return None

"""Wraps event data in CloudEvents 1.0 for Kafka through the CloudEvents SDK's Kafka binding.

Out: structured mode (``content-type: application/cloudevents+json``), key = the entity id.
In: structured or binary mode (``ce_*`` headers), as any CloudEvents SDK publishes them.
Every failure to read a record raises :class:`EnvelopeError` with a short reason code, which
the consumer writes into the dead-letter record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from engagiert.shared.contracts.base import AGS_PATTERN, EventData, model_for

_FORMAT = JSONFormat()
_AGS = __import__("re").compile(AGS_PATTERN)

D = TypeVar("D", bound=EventData)

Reason = Literal["not-json", "not-a-cloudevent", "unknown-type", "invalid-data", "wrong-topic"]


class EnvelopeError(ValueError):
    """A Kafka record that is not a valid engagiert CloudEvent; ``reason`` says why in one word."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Envelope(Generic[D]):
    """A CloudEvent read from or written to Kafka, with its data parsed into the contract model."""

    id: str
    type: str
    source: str
    time: datetime | None
    municipality: str | None
    traceparent: str | None
    data: D
    subject: str | None = None

    @property
    def key(self) -> str:
        """Return the Kafka key: the id of the entity the event is about."""
        return self.data.partition_key()


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A serialised CloudEvent ready for a Kafka producer, also stored as is in an outbox."""

    id: str
    topic: str
    key: str
    value: bytes
    headers: dict[str, bytes]
    type: str

    def to_document(self) -> dict[str, Any]:
        """Return the record as an outbox entry (JSON kept as a string: keys stay opaque to the store)."""
        return {
            "id": self.id,
            "topic": self.topic,
            "key": self.key,
            "type": self.type,
            "value": self.value.decode("utf-8"),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> OutgoingRecord:
        """Rebuild a record from an outbox entry."""
        return cls(
            id=doc["id"],
            topic=doc["topic"],
            key=doc["key"],
            type=doc["type"],
            value=doc["value"].encode("utf-8"),
            headers={"content-type": _FORMAT.CONTENT_TYPE.encode()},
        )


def new_event_id() -> str:
    """Return a fresh, unique CloudEvent id."""
    return str(uuid.uuid4())


def make_record(
    data: EventData,
    *,
    source: str,
    municipality: str | None = None,
    traceparent: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    subject: str | None = None,
) -> OutgoingRecord:
    """Build a structured-mode CloudEvent record for ``data``.

    Args:
        data: the event's data; its class names the CloudEvent ``type`` and the topic.
        source: ``/engagiert/<service>`` or the external system's URI.
        municipality: the AGS extension; taken from ``data.municipality`` when omitted.
        traceparent: the W3C trace context extension, if any.
        event_id: the CloudEvent id (the idempotency key); a fresh UUID when omitted.
        time: the event time; now when omitted.
        subject: an optional CloudEvent subject.
    """
    muni = municipality or getattr(data, "municipality", None)
    attributes: dict[str, Any] = {
        "id": event_id or new_event_id(),
        "source": source,
        "type": data.TYPE,
        "specversion": "1.0",
        "time": time or datetime.now(UTC),
        "datacontenttype": "application/json",
    }
    if muni:
        attributes["municipality"] = muni
    if traceparent:
        attributes["traceparent"] = traceparent
    if subject:
        attributes["subject"] = subject
    event = CloudEvent(attributes, data.model_dump(mode="json"))
    key = data.partition_key()
    message = ce_kafka.to_structured(event, _FORMAT, key_mapper=lambda _e: key)
    return OutgoingRecord(
        id=attributes["id"],
        topic=data.TOPIC,
        key=key,
        value=message.value,
        headers=dict(message.headers),
        type=data.TYPE,
    )


def _headers_dict(
    headers: Iterable[tuple[str, bytes]] | dict[str, bytes] | None,
) -> dict[str, bytes]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    return {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in items}


def parse_record(
    *,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] | dict[str, bytes] | None,
    key: bytes | str | None = None,
    expected_topic: str | None = None,
) -> Envelope[EventData]:
    """Read a Kafka record as a CloudEvent (structured or binary mode) and validate its data.

    Raises:
        EnvelopeError: the record is not JSON, not a CloudEvent, of an unknown type, its data
            breaks the contract, or it does not belong on ``expected_topic``.
    """
    hdrs = _headers_dict(headers)
    message = ce_kafka.KafkaMessage(headers=hdrs, key=key, value=value or b"")
    binary = any(h.lower().startswith("ce_") for h in hdrs)
    if binary:
        # The SDK fills a missing specversion with "1.0"; without one it is not a CloudEvent.
        if not any(h.lower() == "ce_specversion" and v for h, v in hdrs.items()):
            raise EnvelopeError("not-a-cloudevent", "binary mode without a ce_specversion header")
    else:
        try:
            document = json.loads(message.value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError("not-json", f"value is not JSON ({exc.__class__.__name__})") from None
        if not isinstance(document, dict) or not document.get("specversion"):
            raise EnvelopeError("not-a-cloudevent", "structured mode without a specversion attribute")
    try:
        event = ce_kafka.from_kafka(message, _FORMAT, CloudEvent)
    except (BaseCloudEventException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise EnvelopeError("not-a-cloudevent", _short(exc)) from None

    event_type = event.get_type()
    model = model_for(event_type)
    if model is None:
        raise EnvelopeError("unknown-type", f"no contract for type {event_type!r}")
    if expected_topic is not None and expected_topic != model.TOPIC:
        raise EnvelopeError("wrong-topic", f"{event_type} belongs on {model.TOPIC}")
    raw = event.get_data()
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise EnvelopeError("invalid-data", "data is not a JSON object") from None
    try:
        data = model.model_validate(raw)
    except ValidationError as exc:
        raise EnvelopeError("invalid-data", _validation_summary(exc)) from None
    municipality = event.get_extension("municipality")
    if municipality is not None and not _AGS.match(str(municipality)):
        raise EnvelopeError("invalid-data", "extension municipality is not an 8-digit AGS")
    data_muni = getattr(data, "municipality", None)
    if municipality is not None and data_muni is not None and data_muni != municipality:
        raise EnvelopeError("invalid-data", "extension municipality differs from data.municipality")
    return Envelope(
        id=event.get_id(),
        type=event_type,
        source=event.get_source(),
        time=event.get_time(),
        municipality=str(municipality) if municipality is not None else data_muni,
        traceparent=event.get_extension("traceparent"),
        data=data,
        subject=event.get_subject(),
    )


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:300]


def _validation_summary(exc: ValidationError) -> str:
    """Summarise a validation error by field and message, never by value (values may be personal)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "data"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")

"""The CloudEvents envelope: structured out, structured and binary in, poison classified."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engagiert.shared.contracts import MemberErased, ReportHours
from engagiert.shared.envelope import EnvelopeError, make_record, parse_record
from engagiert.shared.topics import REGISTRY_MEMBERS

AGS = "05774032"


def erased(member_id: str = "m1") -> MemberErased:
    return MemberErased(member_id=member_id, municipality=AGS, erased_at=datetime(2026, 1, 2, tzinfo=UTC))


def test_a_record_is_a_structured_cloudevent_keyed_by_the_entity() -> None:
    """The value is a CloudEvents JSON document; the key is the member id; the topic is the contract's."""
    rec = make_record(erased(), source="/engagiert/registry")
    doc = json.loads(rec.value)
    assert rec.headers == {"content-type": b"application/cloudevents+json"}
    assert rec.key == "m1"
    assert rec.topic == REGISTRY_MEMBERS
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "de.engagiert.member.erased.v1"
    assert doc["source"] == "/engagiert/registry"
    assert doc["municipality"] == AGS
    assert doc["data"]["member_id"] == "m1"


def test_a_structured_record_reads_back_into_its_model() -> None:
    """Round trip: what we write, we read, with the data validated into the contract model."""
    rec = make_record(erased(), source="/engagiert/registry", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    env = parse_record(value=rec.value, headers=rec.headers, key=rec.key.encode())
    assert env.id == rec.id
    assert isinstance(env.data, MemberErased)
    assert env.traceparent is not None
    assert env.traceparent.startswith("00-")
    assert env.municipality == AGS


def test_a_binary_mode_record_is_accepted() -> None:
    """Foreign systems may send ce_* headers with the data as the value."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"x-1"),
        ("ce_source", b"urn:agency"),
        ("ce_type", b"de.engagiert.hours.report.v1"),
        ("content-type", b"application/json"),
    ]
    value = json.dumps({"municipality": AGS, "member_id": "m1", "hours": 2.5, "date_from": "2026-03-01"}).encode()
    env = parse_record(value=value, headers=headers)
    assert isinstance(env.data, ReportHours)
    assert env.data.hours == 2.5
    assert env.municipality == AGS


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff not json", "not-json"),
        (b'{"hello": "world"}', "not-a-cloudevent"),
        (b'{"specversion":"1.0","id":"1","source":"/x","type":"de.engagiert.nope.v1","data":{}}', "unknown-type"),
        (
            b'{"specversion":"1.0","id":"1","source":"/x","type":"de.engagiert.member.erased.v1",'
            b'"data":{"member_id":"m1","municipality":"Paderborn","erased_at":"2026-01-01T00:00:00Z"}}',
            "invalid-data",
        ),
    ],
)
def test_poison_is_refused_with_a_one_word_reason(value: bytes, reason: str) -> None:
    """Every unreadable record raises EnvelopeError with the reason the DLQ header carries."""
    with pytest.raises(EnvelopeError) as err:
        parse_record(value=value, headers={"content-type": b"application/cloudevents+json"})
    assert err.value.reason == reason


def test_a_structured_record_without_specversion_is_not_a_cloudevent() -> None:
    """The SDK would fill in "1.0"; a record that names no specversion is refused before it parses."""
    doc = json.loads(make_record(erased(), source="/x").value)
    del doc["specversion"]
    with pytest.raises(EnvelopeError) as err:
        parse_record(value=json.dumps(doc).encode(), headers={"content-type": b"application/cloudevents+json"})
    assert err.value.reason == "not-a-cloudevent"


def test_a_binary_record_without_ce_specversion_is_not_a_cloudevent() -> None:
    """Binary mode needs the ce_specversion header like structured mode needs the attribute."""
    headers = [("ce_id", b"x-1"), ("ce_source", b"urn:agency"), ("ce_type", b"de.engagiert.hours.report.v1")]
    value = json.dumps({"municipality": AGS, "member_id": "m1", "hours": 2.5, "date_from": "2026-03-01"}).encode()
    with pytest.raises(EnvelopeError) as err:
        parse_record(value=value, headers=headers)
    assert err.value.reason == "not-a-cloudevent"


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    """A consumer of one topic refuses a type that belongs on another."""
    rec = make_record(erased(), source="/x")
    with pytest.raises(EnvelopeError) as err:
        parse_record(value=rec.value, headers=rec.headers, expected_topic="registry.inbound.v1")
    assert err.value.reason == "wrong-topic"


def test_validation_errors_name_fields_not_values() -> None:
    """A DLQ reason never repeats the (possibly personal) value that failed."""
    bad = make_record(erased(), source="/x").value.replace(b'"m1"', b'"secret name with spaces"')
    with pytest.raises(EnvelopeError) as err:
        parse_record(value=bad, headers={})
    assert "secret name" not in str(err.value)
    assert "member_id" in str(err.value)


def test_report_hours_needs_exactly_one_member_reference() -> None:
    """A command that names no member, or two references, is invalid."""
    with pytest.raises(ValueError, match="exactly one"):
        ReportHours(municipality=AGS, hours=1, date_from="2026-01-01")  # type: ignore[arg-type]

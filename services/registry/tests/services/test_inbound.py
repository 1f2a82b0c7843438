"""Proves the inbound topic end to end: register and report by external reference, idempotency, dead letters."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from engagiert.shared.contracts import ExternalRef, RegisterMember, ReportHours
from engagiert.shared.envelope import make_record
from engagiert.shared.messaging.dlq import H_ERROR, H_REASON
from engagiert.shared.testing import consume_until, produce_records
from engagiert.shared.topics import dlq

from ..conftest import PADERBORN, READER_PB, STAFF_PB, Registry, member_body, wait_until

pytestmark = pytest.mark.integration

SOURCE = "urn:engagiert-test:vereinsverwaltung"
REF = ExternalRef(system="vereinsverwaltung", id="4711")


def _register(**extra: Any) -> RegisterMember:
    fields: dict[str, Any] = {
        "municipality": PADERBORN,
        "external_ref": REF,
        "given_name": "Jonas",
        "family_name": "Becker",
        "email": "jonas.becker@example.org",
        "consent_channels": ["email"],
        "field": "Feuerwehr/Katastrophenschutz",
        "organisation_name": "Freiwillige Feuerwehr Paderborn",
        "since": date(2018, 4, 1),
    }
    fields.update(extra)
    return RegisterMember(**fields)


async def _members(registry: Registry) -> list[dict[str, Any]]:
    r = await registry.client.get(f"/v1/municipalities/{PADERBORN}/members", headers=READER_PB)
    return list(r.json()["items"])


async def test_register_update_and_report_hours_by_external_reference(registry: Registry) -> None:
    """A system registers, re-sends, updates and reports hours: one member, each event applied once."""
    send = [
        make_record(_register(), source=SOURCE, event_id="reg-1"),
        make_record(_register(), source=SOURCE, event_id="reg-1"),  # a redelivery
    ]
    await produce_records(registry.bootstrap, send, topic=registry.inbound_topic)
    [member] = await wait_until(lambda: _members(registry))
    mid = member["member_id"]
    assert member["external_refs"] == [{"system": "vereinsverwaltung", "id": "4711"}]
    assert member["engagements"][0]["field"] == "Feuerwehr/Katastrophenschutz"

    hours = [
        make_record(
            ReportHours(municipality=PADERBORN, external_ref=REF, hours=2.5, date_from=date(2026, 3, 1)),
            source=SOURCE,
            event_id=f"hours-{i}",
        )
        for i in range(5)
    ]
    by_id = make_record(
        ReportHours(municipality=PADERBORN, member_id=mid, hours=1, date_from=date(2026, 3, 2)),
        source=SOURCE,
        event_id="hours-id",
    )
    update = make_record(_register(family_name="Becker-Wolf", phone="05251 1234"), source=SOURCE, event_id="reg-2")
    await produce_records(registry.bootstrap, [*hours, *hours[:2], by_id, update, update], topic=registry.inbound_topic)

    async def settled() -> dict[str, Any] | None:
        got = (await registry.client.get(f"/v1/municipalities/{PADERBORN}/members/{mid}", headers=READER_PB)).json()
        done = got["family_name"] == "Becker-Wolf" and got["totals"]["hours_by_year"].get("2026") == 13.5
        return got if done else None

    got = await wait_until(settled)
    assert got["revision"] == 2, "the update applied once"
    assert got["contact"]["phone"] == "05251 1234"
    assert len(await _members(registry)) == 1
    assert await registry.db["hours"].count_documents({"member_id": mid}) == 6


async def test_inbound_register_links_a_known_person_instead_of_duplicating(registry: Registry) -> None:
    """A system registering a person staff already have (same e-mail) adds its reference to that member."""
    c = registry.client
    staff_made = (await c.post(f"/v1/municipalities/{PADERBORN}/members", json=member_body(1), headers=STAFF_PB)).json()
    cmd = _register(email="anna1@example.org", given_name="Anna1", family_name="Schmidt")
    await produce_records(registry.bootstrap, [make_record(cmd, source=SOURCE)], topic=registry.inbound_topic)

    async def linked() -> bool:
        got = (
            await c.get(f"/v1/municipalities/{PADERBORN}/members/{staff_made['member_id']}", headers=READER_PB)
        ).json()
        return bool(got["external_refs"])

    await wait_until(linked)
    assert len(await _members(registry)) == 1


async def test_commands_that_cannot_apply_are_dead_lettered_with_a_reason(registry: Registry) -> None:
    """Unknown member, unknown municipality, invalid data: each lands on the DLQ with a clear reason."""
    unknown_member = make_record(
        ReportHours(municipality=PADERBORN, member_id="m-unknown", hours=1, date_from=date(2026, 1, 1)), source=SOURCE
    )
    unknown_ref = make_record(
        ReportHours(
            municipality=PADERBORN, external_ref=ExternalRef(system="x", id="1"), hours=1, date_from=date(2026, 1, 1)
        ),
        source=SOURCE,
    )
    unknown_muni = make_record(_register(municipality="05770000"), source=SOURCE)
    bad = json.loads(make_record(_register(), source=SOURCE).value)
    bad["data"]["email"] = "not-an-address"
    invalid = (
        registry.inbound_topic,
        b"k",
        json.dumps(bad).encode(),
        [("content-type", b"application/cloudevents+json")],
    )
    good = make_record(_register(), source=SOURCE)
    await produce_records(
        registry.bootstrap, [unknown_member, unknown_ref, unknown_muni, invalid, good], topic=registry.inbound_topic
    )

    recs = await consume_until(registry.bootstrap, dlq(registry.inbound_topic), lambda rs: len(rs) >= 4, timeout=90)
    reasons = sorted((dict(r.headers)[H_REASON].decode(), dict(r.headers)[H_ERROR].decode()) for r in recs)
    assert [r for r, _ in reasons] == ["handler-rejected", "handler-rejected", "handler-rejected", "invalid-data"]
    errors = " | ".join(e for _, e in reasons)
    assert "unknown member m-unknown" in errors
    assert "unknown external reference" in errors
    assert "unknown municipality 05770000" in errors
    assert "email" in errors
    assert "not-an-address" not in errors, "the reason names the field, never the value"
    await wait_until(lambda: _members(registry))

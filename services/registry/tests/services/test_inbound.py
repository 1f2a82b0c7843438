"""Proves the inbound topic end to end: register and report by external reference, idempotency, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from engagiert.shared.contracts import ExternalRef, RegisterMember, ReportHours, WithdrawConsent
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


async def _member(registry: Registry, member_id: str) -> dict[str, Any]:
    r = await registry.client.get(f"/v1/municipalities/{PADERBORN}/members/{member_id}", headers=READER_PB)
    return dict(r.json())


async def test_a_system_never_grants_again_a_consent_the_member_withdrew(registry: Registry) -> None:
    """Consent withdrawn over HTTP stays withdrawn when the member's system sends consent again; staff may grant it."""
    await produce_records(registry.bootstrap, [make_record(_register(), source=SOURCE)], topic=registry.inbound_topic)
    [member] = await wait_until(lambda: _members(registry))
    mid = member["member_id"]
    assert member["consent"]["channels"] == ["email"]
    withdrawn = await registry.client.post(
        f"/v1/municipalities/{PADERBORN}/members/{mid}/consent/withdraw", headers=STAFF_PB
    )
    assert withdrawn.status_code == 200, withdrawn.text

    again = _register(phone="05251 4711", consent_channels=["email", "post"])
    await produce_records(registry.bootstrap, [make_record(again, source=SOURCE)], topic=registry.inbound_topic)

    async def applied() -> dict[str, Any] | None:
        got = await _member(registry, mid)
        return got if got["contact"].get("phone") == "05251 4711" else None

    got = await wait_until(applied)
    assert got["consent"]["channels"] == []
    assert got["consent"]["withdrawn_at"] is not None

    body = {"consent": {"channels": ["post"], "source": "Anruf in der Anlaufstelle"}}
    r = await registry.client.patch(f"/v1/municipalities/{PADERBORN}/members/{mid}", json=body, headers=STAFF_PB)
    assert r.status_code == 200, r.text
    assert r.json()["consent"]["channels"] == ["post"], "staff grant consent again on purpose"
    more = _register(phone="05251 4712", consent_channels=["email", "post"])
    await produce_records(registry.bootstrap, [make_record(more, source=SOURCE)], topic=registry.inbound_topic)
    got = await wait_until(lambda: _phone_is(registry, mid, "05251 4712"))
    assert got["consent"]["channels"] == ["post"], "e-mail stays withdrawn for the system; staff granted post only"


async def _phone_is(registry: Registry, mid: str, phone: str) -> dict[str, Any] | None:
    got = await _member(registry, mid)
    return got if got["contact"].get("phone") == phone else None


async def test_a_system_matching_a_member_by_e_mail_links_but_neither_overwrites_nor_grants(registry: Registry) -> None:
    """A command that finds a member only by e-mail adds its reference; names, contact and consent stay as they are."""
    c = registry.client
    body = member_body(7)
    body["contact"]["phone"] = "05251 0007"
    mid = (await c.post(f"/v1/municipalities/{PADERBORN}/members", json=body, headers=STAFF_PB)).json()["member_id"]
    r = await c.post(f"/v1/municipalities/{PADERBORN}/members/{mid}/consent/withdraw", headers=STAFF_PB)
    assert r.status_code == 200, r.text

    cmd = _register(
        external_ref=ExternalRef(system="fremdsystem", id="1"),
        email="anna7@example.org",
        given_name="Someone",
        family_name="Else",
        phone="0170 666",
        consent_channels=["email", "phone"],
    )
    await produce_records(registry.bootstrap, [make_record(cmd, source=SOURCE)], topic=registry.inbound_topic)

    async def linked() -> dict[str, Any] | None:
        got = await _member(registry, mid)
        return got if got["external_refs"] else None

    got = await wait_until(linked)
    assert (got["given_name"], got["family_name"]) == ("Anna7", "Schmidt")
    assert got["contact"]["phone"] == "05251 0007"
    assert got["consent"]["channels"] == []
    assert got["consent"]["withdrawn_at"] is not None
    assert len(await _members(registry)) == 1


async def test_an_unsubscribe_withdraws_only_the_e_mail_channel_once(registry: Registry) -> None:
    """WithdrawConsent (from an unsubscribe link) drops e-mail, keeps post, applies once; a later system can't re-grant."""
    c = registry.client
    body = member_body(8, consent={"channels": ["email", "post"], "source": "Formular Anlaufstelle"})
    mid = (await c.post(f"/v1/municipalities/{PADERBORN}/members", json=body, headers=STAFF_PB)).json()["member_id"]
    now = datetime.now(UTC)
    cmd = WithdrawConsent(municipality=PADERBORN, member_id=mid, channels=["email"], requested_at=now)
    unknown = WithdrawConsent(municipality=PADERBORN, member_id="m-gone", channels=["email"], requested_at=now)
    records = [
        make_record(cmd, source="/engagiert/notifications", event_id="unsub-1"),
        make_record(cmd, source="/engagiert/notifications", event_id="unsub-1"),  # a redelivery
        make_record(unknown, source="/engagiert/notifications", event_id="unsub-2"),
    ]
    await produce_records(registry.bootstrap, records, topic=registry.inbound_topic)

    async def narrowed() -> dict[str, Any] | None:
        got = await _member(registry, mid)
        return got if got["consent"]["channels"] == ["post"] else None

    got = await wait_until(narrowed)
    assert got["revision"] == 2, "applied once"
    assert got["consent"]["withdrawn_at"] is None, "post consent stands"
    # The same command again with a new id changes nothing: e-mail is withdrawn already.
    again = make_record(cmd, source="/engagiert/notifications", event_id="unsub-3")
    await produce_records(
        registry.bootstrap, [again, make_record(_register(), source=SOURCE)], topic=registry.inbound_topic
    )
    await wait_until(lambda: _members_at_least(registry, 2))
    assert (await _member(registry, mid))["revision"] == 2


async def _members_at_least(registry: Registry, n: int) -> bool:
    return len(await _members(registry)) >= n

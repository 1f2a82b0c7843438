"""Proofs on the real stack: the member read model from the registry's topics, honours, erasure."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engagiert.events.bench import event_body, seed_members
from engagiert.events.repository import EVENTS, HONOURS, INVITATIONS, MEMBERS, SEATS_TAKEN
from engagiert.shared import topics
from engagiert.shared.contracts import (
    Contact,
    Engagement,
    HoursRecorded,
    HoursTotals,
    MemberErased,
    MemberRegistered,
    MemberSnapshot,
    MemberUpdated,
)
from engagiert.shared.envelope import make_record
from engagiert.shared.testing import StackEndpoints, consume_until, eventually, produce_records

pytestmark = pytest.mark.integration
Running = Any  # the fixture type lives in conftest.py (not importable under importlib mode)
SOURCE = "/test/registry"


def _snapshot(member_id: str, ags: str, revision: int, given: str) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=member_id,
        municipality=ags,
        revision=revision,
        given_name=given,
        family_name="Musterfrau",
        date_of_birth=date(1990, 5, 17),
        contact=Contact(email="erika@example.org", phone="+49 5251 1234"),
        engagements=[Engagement(engagement_id=f"{member_id}-e", field="Sport", since=date(2018, 1, 1))],
    )


async def test_read_model_keeps_no_contact_applies_newer_revisions_once_and_erasure_is_confirmed(
    running: Running, stack: StackEndpoints, unique: Callable[[str], str], topic_window: Callable[[str], Any]
) -> None:
    """Snapshots without contact data, newest revision wins, hours counted once, honours proposed; erasure withdraws
    the open invitation (the next one promoted), revokes the card (its check says so, nameless) and is confirmed."""
    r = running
    member_id = unique("mem")
    today = datetime.now(UTC).date()
    hours = HoursRecorded(
        entry_id=f"{member_id}-h1",
        member_id=member_id,
        municipality=r.ags,
        hours=300,
        date_from=today - timedelta(days=20),
        reported_by="test",
        totals=HoursTotals(hours_last_12_months=300),
    )
    records = [
        make_record(MemberRegistered(member=_snapshot(member_id, r.ags, 2, "Erika")), source=SOURCE),
        make_record(MemberUpdated(member=_snapshot(member_id, r.ags, 1, "Veraltet")), source=SOURCE),
        make_record(hours, source=SOURCE, event_id=f"{member_id}-ev1"),
        make_record(hours, source=SOURCE, event_id=f"{member_id}-ev1"),
        make_record(hours, source=SOURCE),  # same entry, another event id
    ]
    await produce_records(stack.kafka_bootstrap_servers, records)

    async def loaded() -> dict[str, Any] | None:
        doc = await r.db[MEMBERS].find_one({"_id": member_id})
        return doc if doc and doc.get("given_name") and doc.get("hours_by_day") else None

    doc = await eventually(loaded, timeout=90)
    await asyncio.sleep(1)  # let the duplicates arrive too
    doc = await r.db[MEMBERS].find_one({"_id": member_id})
    assert doc is not None
    assert doc["given_name"] == "Erika"
    assert doc["revision"] == 2
    assert doc["hours_by_day"] == {hours.date_from.isoformat(): 300}, "the entry counted once"
    assert await r.db["hours_applied"].count_documents({"member_id": member_id}) == 1
    assert "contact" not in doc
    assert "example.org" not in json.dumps(doc, default=str)

    # 300 h in 12 months and 16+: the Ehrenamtskarte is proposed; staff grant it with a card code.
    honour_id = f"{member_id}:ehrenamtskarte"
    proposed = await eventually(lambda: r.db[HONOURS].find_one({"_id": honour_id}), timeout=90)
    assert proposed["status"] == "proposed"
    granted = await r.client.post(
        f"/v1/municipalities/{r.ags}/honours/{honour_id}/grant", json={"card_number": "PB-0001"}, headers=r.headers
    )
    assert granted.status_code == 200, granted.text
    code = granted.json()["verification_code"]
    assert granted.json()["valid_until"] is not None
    check = await r.client.get(f"/v1/honours/verify/{code}")
    assert check.status_code == 200
    assert check.json()["card_number"] == "PB-0001"
    assert "Erika" not in check.text
    altered = code[:-2] + ("AA" if not code.endswith("AA") else "BB")
    assert (await r.client.get(f"/v1/honours/verify/{altered}")).status_code == 404
    again = await r.client.post(
        f"/v1/municipalities/{r.ags}/honours/{honour_id}/reject", json={"reason": "doppelt"}, headers=r.headers
    )
    assert again.status_code == 409

    # An event for two: the member is invited and accepts with a guest (both seats); a third invitee waits.
    await seed_members(r.db, r.ags, 2)
    event = await r.client.post(r.base, json=event_body(capacity=2, guests=1), headers=r.headers)
    assert event.status_code == 201, event.text
    event_id = event.json()["id"]
    for who in (member_id, "m000000", "m000001"):
        issued = await r.client.post(
            f"{r.base}/{event_id}/invitations/issue", json={"member_ids": [who]}, headers=r.headers
        )
        assert issued.status_code in (200, 201), issued.text
    mails = r.app.state.use_cases().invitation_mails
    event_doc = await r.db[EVENTS].find_one({"_id": event_id})
    assert event_doc is not None
    rsvp = mails.rsvp_url(f"{event_id}:{member_id}", event_doc["rsvp_deadline"]).rsplit("/", 1)[1]
    accepted = await r.client.post(f"/rsvp/{rsvp}", data={"answer": "accept", "guests": "1"})
    assert accepted.status_code == 200, accepted.text
    assert (await r.db[EVENTS].find_one({"_id": event_id}) or {}).get(SEATS_TAKEN) == 2
    waiting = await r.db[INVITATIONS].find_one({"_id": f"{event_id}:m000001"})
    assert waiting is not None
    assert waiting["status"] == "waitlisted"
    facts = await topic_window(topics.EVENTS_RECOGNITION).open()

    # Erasure removes names and birth date, keeps the anonymous document, and confirms to the registry.
    erased = MemberErased(member_id=member_id, municipality=r.ags, erased_at=datetime.now(UTC))
    await produce_records(stack.kafka_bootstrap_servers, [make_record(erased, source=SOURCE)])

    async def gone() -> dict[str, Any] | None:
        d = await r.db[MEMBERS].find_one({"_id": member_id})
        return d if d and d.get("erased") else None

    anon = await eventually(gone, timeout=90)

    # It also ends the rest: the open invitation is withdrawn (seats freed, the next one promoted),
    # the granted card is revoked and its check says so without a name.
    withdrawn = await r.db[INVITATIONS].find_one({"_id": f"{event_id}:{member_id}"})
    assert withdrawn is not None
    assert withdrawn["status"] == "withdrawn"
    assert (await r.db[EVENTS].find_one({"_id": event_id}) or {}).get(SEATS_TAKEN) == 0
    promoted = await r.db[INVITATIONS].find_one({"_id": f"{event_id}:m000001"})
    assert promoted is not None
    assert promoted["status"] == "invited"
    assert (await r.db[HONOURS].find_one({"_id": honour_id}) or {}).get("status") == "revoked"
    revoked = await r.client.get(f"/v1/honours/verify/{code}")
    assert revoked.status_code == 410
    assert revoked.json()["reason"] == "revoked"
    assert "Erika" not in revoked.text
    assert "Musterfrau" not in revoked.text
    link = await r.client.get(f"/rsvp/{rsvp}")
    assert link.status_code == 410
    assert "zurückgezogen" in link.text

    async def published() -> list[str]:
        types = [f["type"] for f in await facts.read() if f["data"].get("member_id") in (member_id, "m000001")]
        wanted = {"de.engagiert.invitation.withdrawn.v1", "de.engagiert.honour.revoked.v1"}
        return types if wanted <= set(types) else []

    types = await eventually(published, timeout=60)
    assert "de.engagiert.invitation.promoted.v1" in types
    assert "given_name" not in anon
    assert "family_name" not in anon
    assert "date_of_birth" not in anon
    names_left = await r.db[MEMBERS].count_documents({"$or": [{"given_name": "Erika"}, {"family_name": "Musterfrau"}]})
    assert names_left == 0

    def confirmations(recs: list[Any]) -> list[dict[str, Any]]:
        out = []
        for rec in recs:
            body = json.loads(rec.value)
            if body.get("type") == "de.engagiert.erasure.confirm.v1" and body["data"].get("member_id") == member_id:
                out.append(body)
        return out

    found = await consume_until(
        stack.kafka_bootstrap_servers,
        topics.REGISTRY_ERASURE_CONFIRMATIONS,
        lambda recs: bool(confirmations(recs)),
        timeout=60,
    )
    assert confirmations(found)[0]["data"]["service"] == "events"

    # A late, older snapshot does not bring the names back.
    await produce_records(
        stack.kafka_bootstrap_servers,
        [make_record(MemberUpdated(member=_snapshot(member_id, r.ags, 3, "Zurück")), source=SOURCE)],
    )
    await asyncio.sleep(2)
    doc = await r.db[MEMBERS].find_one({"_id": member_id})
    assert doc is not None
    assert "given_name" not in doc


async def test_honour_rules_are_per_municipality(running: Running) -> None:
    """A municipality's rules override the state defaults and are validated."""
    r = running
    url = f"/v1/municipalities/{r.ags}/honour-rules"
    assert (await r.client.get(url, headers=r.headers)).json()["min_age"] == 16
    put = await r.client.put(url, json={"min_duration_years": 2, "min_age": 18, "validity_years": 2}, headers=r.headers)
    assert put.status_code == 200, put.text
    assert (await r.client.get(url, headers=r.headers)).json()["validity_years"] == 2
    assert (await r.client.put(url, json={"min_age": -1}, headers=r.headers)).status_code == 422


async def test_the_state_defaults_are_published_with_their_dated_thresholds(running: Running) -> None:
    """Any signed-in user reads the defaults and the thresholds, which cover every day once; no token: 401."""
    r = running
    got = await r.client.get("/v1/honour-rules/defaults", headers=r.headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["defaults"]["min_age"] == 16
    thresholds = body["state_thresholds"]
    assert thresholds[0]["hours_per_year"] == 250
    assert thresholds[-1] == {
        "valid_from": "2026-01-01",
        "valid_until": None,
        "hours_per_week": 4.0,
        "hours_per_year": 200.0,
    }
    for before, after in itertools.pairwise(thresholds):
        assert before["valid_until"] == after["valid_from"]
    assert (await r.client.get("/v1/honour-rules/defaults")).status_code == 401

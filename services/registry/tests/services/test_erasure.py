"""Proves erasure (DSGVO Art. 17): a tombstone stays, no personal data remains, confirmations are recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from bson import json_util

from engagiert.shared.contracts import ConfirmErasure, ExternalRef, RegisterMember, ReportHours
from engagiert.shared.envelope import make_record, parse_record
from engagiert.shared.testing import consume_until, produce_records
from engagiert.shared.topics import REGISTRY_MEMBERS

from ..conftest import PADERBORN, READER_PB, STAFF_PB, Registry, member_body, wait_until

pytestmark = pytest.mark.integration


async def test_erasure_leaves_a_tombstone_only_and_records_confirmations(registry: Registry) -> None:
    """After DELETE no collection holds the name, e-mail, phone or address; events and notifications confirm."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    body = member_body(
        "Erase",
        given_name="Friederike",
        family_name="Quastenberg",
        contact={
            "email": "friederike.quastenberg@example.org",
            "phone": "05251 987654",
            "postal_address": {"street": "Lönsweg 17", "postal_code": "33100", "city": "Paderborn"},
        },
        external_refs=[{"system": "agentur", "id": "fq-1"}],
    )
    mid = (await c.post(f"{base}/members", json=body, headers=STAFF_PB)).json()["member_id"]
    await c.post(f"{base}/members/{mid}/hours", json={"hours": 2, "date_from": "2026-05-01"}, headers=STAFF_PB)
    report = ReportHours(
        municipality=PADERBORN,
        external_ref=ExternalRef(system="agentur", id="fq-1"),
        hours=1,
        date_from=date(2026, 5, 2),
    )
    await produce_records(registry.bootstrap, [make_record(report, source="urn:agentur")], topic=registry.inbound_topic)
    await wait_until(lambda: _count_is(registry, mid, 2))

    r = await c.delete(f"{base}/members/{mid}", headers=STAFF_PB)
    assert r.status_code == 202, r.text
    assert r.json()["complete"] is False
    assert (await c.get(f"{base}/members/{mid}", headers=READER_PB)).status_code == 404
    assert (await c.delete(f"{base}/members/{mid}", headers=STAFF_PB)).status_code == 404

    recs = await consume_until(
        registry.bootstrap,
        REGISTRY_MEMBERS,
        lambda rs: any(r.key == mid.encode() and b"member.erased" in r.value for r in rs),
        timeout=60,
    )
    erased = [
        parse_record(value=r.value, headers=r.headers, key=r.key)
        for r in recs
        if r.key == mid.encode() and b"member.erased" in r.value
    ]
    assert erased[0].municipality == PADERBORN

    # A system re-registering with the old reference after erasure must not revive the person under the old id.
    confirms = [
        make_record(
            ConfirmErasure(member_id=mid, municipality=PADERBORN, service=s, erased_at=datetime.now(UTC)),
            source=f"/engagiert/{s}",
        )
        for s in ("events", "notifications")
    ]
    await produce_records(registry.bootstrap, confirms, topic=registry.inbound_topic)

    async def complete() -> bool:
        status = (await c.get(f"{base}/members/{mid}/erasure", headers=READER_PB)).json()
        return bool(status["complete"])

    await wait_until(complete)
    await wait_until(lambda: _outbox_drained(registry))
    needles = ["Friederike", "Quastenberg", "friederike.quastenberg", "987654", "Lönsweg", "fq-1"]
    for name in await registry.db.list_collection_names():
        async for doc in registry.db[name].find({}):
            text = json_util.dumps(doc)
            for needle in needles:
                assert needle not in text, f"{needle!r} left in {name}"
    tombstone = await registry.db["members"].find_one({"_id": mid})
    assert tombstone is not None
    assert tombstone["municipality"] == PADERBORN
    assert tombstone["erased"] is True
    assert await registry.db["hours"].count_documents({"member_id": mid}) == 0


async def _outbox_drained(registry: Registry) -> bool:
    for name in ("members", "hours_figures", "hours"):
        if await registry.db[name].count_documents({"_outbox_pending": True}):
            return False
    return True


async def test_inbound_register_after_erasure_creates_a_new_member(registry: Registry) -> None:
    """The erased person's tombstone is never revived: a later registration is a new member."""
    ref = ExternalRef(system="agentur", id="again-1")
    cmd = RegisterMember(municipality=PADERBORN, external_ref=ref, given_name="Ole", family_name="Brandt")
    await produce_records(registry.bootstrap, [make_record(cmd, source="urn:agentur")], topic=registry.inbound_topic)
    first = await wait_until(lambda: registry.db["members"].find_one({"ext_keys": "agentur:again-1"}))
    assert (
        await registry.client.delete(f"/v1/municipalities/{PADERBORN}/members/{first['_id']}", headers=STAFF_PB)
    ).status_code == 202
    await produce_records(registry.bootstrap, [make_record(cmd, source="urn:agentur")], topic=registry.inbound_topic)
    second = await wait_until(lambda: registry.db["members"].find_one({"ext_keys": "agentur:again-1"}))
    assert second["_id"] != first["_id"]


async def _count_is(registry: Registry, member_id: str, count: int) -> bool:
    return await registry.db["hours"].count_documents({"member_id": member_id}) == count

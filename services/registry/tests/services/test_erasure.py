"""Proves erasure (DSGVO Art. 17): a tombstone stays, no personal data remains, confirmations are recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from bson import json_util

from engagiert.shared.contracts import ConfirmErasure, ExternalRef, RegisterMember, ReportHours
from engagiert.shared.envelope import make_record, parse_record
from engagiert.shared.messaging.dlq import H_ERROR, H_REASON
from engagiert.shared.testing import consume_until, produce_records
from engagiert.shared.topics import REGISTRY_MEMBERS, dlq

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
    await produce_records(registry.bootstrap, confirms, topic=registry.confirmations_topic)

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


async def test_the_erased_stay_erased_until_staff_register_them_again_on_purpose(registry: Registry) -> None:
    """After erasure an inbound command is dead-lettered, an import row refused, a plain POST 409; the flag works."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    ref = ExternalRef(system="agentur", id="again-1")
    cmd = RegisterMember(
        municipality=PADERBORN, external_ref=ref, given_name="Ole", family_name="Brandt", email="ole.brandt@example.org"
    )
    await produce_records(registry.bootstrap, [make_record(cmd, source="urn:agentur")], topic=registry.inbound_topic)
    first = await wait_until(lambda: registry.db["members"].find_one({"ext_keys": "agentur:again-1"}))
    assert (await c.delete(f"{base}/members/{first['_id']}", headers=STAFF_PB)).status_code == 202
    tombstone = await registry.db["members"].find_one({"_id": first["_id"]})
    assert tombstone is not None
    assert len(tombstone["erased_marks"]) == 2, "e-mail and external reference, salted and hashed"
    assert not any("brandt" in m or "again-1" in m for m in tombstone["erased_marks"])

    # The same reference, and a new reference with the erased e-mail (case and blanks differ): both refused.
    other = cmd.model_copy(
        update={"external_ref": ExternalRef(system="verein", id="9"), "email": "Ole.Brandt@Example.org"}
    )
    again = [make_record(cmd, source="urn:agentur"), make_record(other, source="urn:verein")]
    await produce_records(registry.bootstrap, again, topic=registry.inbound_topic)
    dead = await consume_until(registry.bootstrap, dlq(registry.inbound_topic), lambda rs: len(rs) >= 2, timeout=90)
    for rec in dead:
        headers = dict(rec.headers)
        assert headers[H_REASON] == b"handler-rejected"
        assert headers[H_ERROR].decode().startswith("PermanentError: previously-erased")
        assert b"Brandt" not in headers[H_ERROR]
    assert await registry.db["members"].count_documents({"erased": {"$ne": True}}) == 0

    row = "given_name,family_name,email\nOla,Brandt,OLE.BRANDT@example.org\nNeue,Person,neu@example.org\n"
    files = {"file": ("m.csv", row.encode(), "text/csv")}
    imported = await c.post(f"{base}/members/import", files=files, headers=STAFF_PB)
    assert imported.status_code == 422, imported.text
    [error] = imported.json()["errors"]
    assert error["line"] == 2
    assert "erased" in error["errors"][0]
    assert "allow_previously_erased=true" in error["errors"][0]
    assert await registry.db["members"].count_documents({"erased": {"$ne": True}}) == 0

    body = member_body("Ole", given_name="Ole", family_name="Brandt", contact={"email": "ole.brandt@example.org"})
    refused = await c.post(f"{base}/members", json=body, headers=STAFF_PB)
    assert refused.status_code == 409, refused.text
    assert refused.json()["title"] == "Previously erased"
    back = await c.post(f"{base}/members", params={"allow_previously_erased": "true"}, json=body, headers=STAFF_PB)
    assert back.status_code == 201, back.text
    assert back.json()["member_id"] != first["_id"], "a new member, never the tombstone revived"


async def _count_is(registry: Registry, member_id: str, count: int) -> bool:
    return await registry.db["hours"].count_documents({"member_id": member_id}) == count

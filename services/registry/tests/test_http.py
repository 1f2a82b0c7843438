"""Proves the HTTP API end to end on the real stack: writes, figures, facts on the topics, scoping, errors."""

from __future__ import annotations

from typing import Any

import pytest

from engagiert.shared.envelope import parse_record
from engagiert.shared.testing import consume_until
from engagiert.shared.topics import REGISTRY_ENGAGEMENT, REGISTRY_MEMBERS

from .conftest import ADMIN, BIELEFELD, PADERBORN, READER_PB, STAFF_BI, STAFF_PB, Registry, member_body

pytestmark = pytest.mark.integration


async def _facts(bootstrap: str, topic: str, member_id: str, count: int) -> list[Any]:
    """Read the facts about ``member_id`` on ``topic``; every record must parse as a valid CloudEvent."""
    recs = await consume_until(
        bootstrap, topic, lambda rs: len({r.value for r in rs if r.key == member_id.encode()}) >= count, timeout=60
    )
    mine = [r for r in recs if r.key == member_id.encode()]
    parsed = [parse_record(value=r.value, headers=r.headers, key=r.key, expected_topic=topic) for r in mine]
    # The relay publishes at least once: a record may repeat, with the same CloudEvent id.
    return list({e.id: e for e in parsed}.values())


async def test_member_lifecycle_writes_state_and_publishes_valid_facts(registry: Registry) -> None:
    """Register, change, pause, withdraw consent, record hours: every change is served and published in order."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    org = (
        await c.post(f"{base}/organisations", json={"name": "TuS Paderborn", "kind": "Verein"}, headers=STAFF_PB)
    ).json()
    body = member_body(1)
    body["engagements"][0]["organisation_id"] = org["id"]
    r = await c.post(f"{base}/members", json=body, headers=STAFF_PB)
    assert r.status_code == 201, r.text
    member = r.json()
    mid = member["member_id"]
    assert member["revision"] == 1
    assert member["totals"]["years_of_engagement"] > 10

    r = await c.patch(
        f"{base}/members/{mid}", json={"juleica": {"holder": True, "expires_on": "2028-01-31"}}, headers=STAFF_PB
    )
    assert r.status_code == 200
    assert r.json()["revision"] == 2
    assert (await c.post(f"{base}/members/{mid}/status", json={"status": "paused"}, headers=STAFF_PB)).json()[
        "status"
    ] == "paused"
    r = await c.post(f"{base}/members/{mid}/consent/withdraw", headers=STAFF_PB)
    assert r.json()["consent"]["channels"] == []
    assert r.json()["revision"] == 4
    r = await c.post(
        f"{base}/members/{mid}/hours",
        json={"hours": 3.5, "date_from": "2026-01-10", "organisation_id": org["id"]},
        headers=STAFF_PB,
    )
    assert r.status_code == 201, r.text
    assert r.json()["totals"]["hours_by_year"] == {"2026": 3.5}
    other = (await c.post(f"{base}/members", json=member_body(2), headers=STAFF_PB)).json()["member_id"]
    bulk = [
        {"member_id": mid, "hours": 4, "date_from": "2025-12-30", "date_to": "2026-01-02"},
        {"member_id": other, "hours": 1, "date_from": "2026-02-01"},
    ]
    r = await c.post(f"{base}/hours", json=bulk, headers=STAFF_PB)
    assert r.status_code == 201, r.text
    got = (await c.get(f"{base}/members/{mid}", headers=READER_PB)).json()
    assert got["totals"]["hours_by_year"] == {"2025": 2.0, "2026": 5.5}
    assert got["engagement_periods"][0]["start"] == "2015-03-01"

    members = await _facts(registry.bootstrap, REGISTRY_MEMBERS, mid, 6)
    types = [e.type.split(".")[3] for e in members]
    assert types == ["registered", "updated", "status-changed", "updated", "consent-changed", "updated"], types
    revisions = [e.data.member.revision for e in members if hasattr(e.data, "member")]
    assert revisions == sorted(revisions)
    assert revisions[0] == 1
    assert revisions[-1] == 4
    engagement = await _facts(registry.bootstrap, REGISTRY_ENGAGEMENT, mid, 3)
    kinds = [e.type for e in engagement]
    assert "de.engagiert.engagement.started.v1" in kinds
    assert [e.data.totals.hours_by_year for e in engagement if e.type.startswith("de.engagiert.hours")][-1] == {
        "2025": 2.0,
        "2026": 5.5,
    }
    assert all(e.municipality == PADERBORN for e in members + engagement)


async def test_list_filters_and_cursor_pagination(registry: Registry) -> None:
    """The list filters by status, field, name and pages with a cursor without repeating or losing members."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    for i in range(7):
        body = member_body(f"L{i}", family_name="Meyer" if i % 2 else "Schulz")
        if i == 6:
            body["engagements"][0]["field"] = "Kultur"
        assert (await c.post(f"{base}/members", json=body, headers=STAFF_PB)).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await c.get(f"{base}/members", params=params, headers=READER_PB)).json()
        seen += [m["member_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 == len(set(seen))
    assert len((await c.get(f"{base}/members", params={"name": "meyer"}, headers=READER_PB)).json()["items"]) == 3
    assert len((await c.get(f"{base}/members", params={"field": "Kultur"}, headers=READER_PB)).json()["items"]) == 1
    assert len((await c.get(f"{base}/members", params={"status": "left"}, headers=READER_PB)).json()["items"]) == 0

    # By id, as the console looks up the names behind another service's ids: unknown ids are left out.
    wanted = [("id", seen[5]), ("id", seen[1]), ("id", "m-unknown"), ("id", seen[1])]
    page = (await c.get(f"{base}/members", params=wanted, headers=READER_PB)).json()
    assert [m["member_id"] for m in page["items"]] == sorted([seen[1], seen[5]])
    too_many = [("id", f"m-{i}") for i in range(101)]
    assert (await c.get(f"{base}/members", params=too_many, headers=READER_PB)).status_code == 422
    assert (await c.get(f"{base}/members", params={"id": "a b"}, headers=READER_PB)).status_code == 422
    other = (await c.get(f"/v1/municipalities/{BIELEFELD}/members", params=wanted, headers=STAFF_BI)).json()
    assert other["items"] == [], "another municipality's ids name nobody"


async def test_duplicates_are_reported_with_the_existing_id(registry: Registry) -> None:
    """Same e-mail, or same name and birth date, in one municipality: 409 naming the member; elsewhere it is new."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    first = (await c.post(f"{base}/members", json=member_body(1), headers=STAFF_PB)).json()["member_id"]
    by_mail = member_body(9, contact={"email": "ANNA1@example.org"}, date_of_birth="1990-01-01")
    r = await c.post(f"{base}/members", json=by_mail, headers=STAFF_PB)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["existing_member_id"] == first
    by_name = member_body(1, contact={"email": "other@example.org"})
    assert (await c.post(f"{base}/members", json=by_name, headers=STAFF_PB)).json()["existing_member_id"] == first
    r = await c.post(f"/v1/municipalities/{BIELEFELD}/members", json=member_body(1), headers=STAFF_BI)
    assert r.status_code == 201, "another municipality's register is separate"


async def test_other_municipalities_cannot_see_or_change_a_member(registry: Registry) -> None:
    """A Bielefeld token gets the same 404 for a Paderborn member as for an id that does not exist."""
    c = registry.client
    mid = (await c.post(f"/v1/municipalities/{PADERBORN}/members", json=member_body(1), headers=STAFF_PB)).json()[
        "member_id"
    ]
    calls = [
        ("GET", f"/v1/municipalities/{PADERBORN}/members/{mid}", None),
        ("GET", f"/v1/municipalities/{PADERBORN}/members", None),
        ("PATCH", f"/v1/municipalities/{PADERBORN}/members/{mid}", {"given_name": "X"}),
        ("DELETE", f"/v1/municipalities/{PADERBORN}/members/{mid}", None),
        ("GET", f"/v1/municipalities/{BIELEFELD}/members/{mid}", None),
        ("PATCH", f"/v1/municipalities/{BIELEFELD}/members/{mid}", {"given_name": "X"}),
        ("POST", f"/v1/municipalities/{BIELEFELD}/members/{mid}/hours", {"hours": 1, "date_from": "2026-01-01"}),
        ("DELETE", f"/v1/municipalities/{BIELEFELD}/members/{mid}", None),
        ("GET", f"/v1/municipalities/{BIELEFELD}/members/m-doesnotexist", None),
    ]
    bodies = []
    for method, url, body in calls:
        r = await c.request(method, url, json=body, headers=STAFF_BI)
        assert r.status_code == 404, (method, url, r.text)
        bodies.append({k: v for k, v in r.json().items() if k != "instance"})
    assert all(b == bodies[0] for b in bodies), "the answers must not differ"
    bulk = [{"member_id": mid, "hours": 1, "date_from": "2026-01-01"}]
    assert (await c.post(f"/v1/municipalities/{BIELEFELD}/hours", json=bulk, headers=STAFF_BI)).status_code == 404
    assert (await c.get(f"/v1/municipalities/{PADERBORN}/members/{mid}", headers=STAFF_PB)).json()[
        "given_name"
    ] == "Anna1"


async def test_invalid_input_gets_a_4xx_problem(registry: Registry) -> None:
    """Bad bodies, missing tokens, missing roles: 4xx problem+json, never 5xx."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    mid = (await c.post(f"{base}/members", json=member_body(1), headers=STAFF_PB)).json()["member_id"]
    cases = [
        (await c.post(f"{base}/members", json={"given_name": "A"}, headers=STAFF_PB), 422),
        (
            await c.post(f"{base}/members", json=member_body(2, contact={"email": "not-an-address"}), headers=STAFF_PB),
            422,
        ),
        (await c.post(f"{base}/members", json=member_body(3, status="sleeping"), headers=STAFF_PB), 422),
        (
            await c.post(
                f"{base}/members/{mid}/hours", json={"hours": -1, "date_from": "2026-01-01"}, headers=STAFF_PB
            ),
            422,
        ),
        (
            await c.post(
                f"{base}/members/{mid}/hours",
                json={"hours": 1, "date_from": "2026-01-05", "date_to": "2026-01-01"},
                headers=STAFF_PB,
            ),
            422,
        ),
        (
            await c.post(
                f"{base}/members/{mid}/hours",
                json={"hours": 1, "date_from": "2026-01-05", "organisation_id": "o-nope"},
                headers=STAFF_PB,
            ),
            422,
        ),
        (await c.get(f"{base}/members", params={"cursor": "!!"}, headers=STAFF_PB), 400),
        (await c.get(f"{base}/members"), 401),
        (await c.post(f"{base}/members", json=member_body(4), headers=READER_PB), 403),
        (await c.post("/v1/municipalities", json={"ags": "123", "name": "X", "kind": "Stadt"}, headers=ADMIN), 422),
        (
            await c.post("/v1/municipalities", json={"ags": "05774032", "name": "X", "kind": "Stadt"}, headers=ADMIN),
            409,
        ),
        (
            await c.post(
                "/v1/municipalities", json={"ags": "05770000", "name": "X", "kind": "Stadt"}, headers=STAFF_PB
            ),
            403,
        ),
        (await c.post(f"{base}/members/{mid}/status", json={"status": "gone"}, headers=STAFF_PB), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_municipality_publishes_its_profile_when_created_and_changed(registry: Registry) -> None:
    """Name, kind, contact point, address, website and logo travel as municipality.profile-changed, newest revision last."""
    import random

    c = registry.client
    ags = f"05{random.randrange(10**6):06d}"
    body = {
        "ags": ags,
        "name": "Stadt Paderborn",
        "kind": "Stadt",
        "contact_point_name": "Anlaufstelle für ehrenamtliches Engagement",
        "contact_point_email": "ehrenamt@paderborn.example",
        "contact_point_phone": "05251 88-11000",
        "postal_address": {"street": "Am Abdinghof 11", "postal_code": "33098", "city": "Paderborn"},
        "website": "https://www.paderborn.example/ehrenamt",
    }
    r = await c.post("/v1/municipalities", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await c.patch(
        f"/v1/municipalities/{ags}", json={"logo_url": "https://www.paderborn.example/logo.png"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    facts = await _facts(registry.bootstrap, REGISTRY_MEMBERS, ags, 2)
    assert [e.type for e in facts] == ["de.engagiert.municipality.profile-changed.v1"] * 2
    first, second = (e.data.profile for e in facts)
    assert (first.revision, second.revision) == (1, 2)
    assert first.contact_point_name == "Anlaufstelle für ehrenamtliches Engagement"
    assert first.postal_address is not None
    assert first.postal_address.city == "Paderborn"
    assert first.logo_url is None
    assert str(second.logo_url) == "https://www.paderborn.example/logo.png"
    assert all(e.municipality == ags for e in facts)

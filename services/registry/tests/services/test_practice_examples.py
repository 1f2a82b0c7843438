"""Proves the practice examples on the real stack: publish, search, change with If-Match, withdraw, who may do what."""

from __future__ import annotations

from typing import Any

import pytest

from engagiert.shared.testing import auth_header

from ..conftest import ADMIN, BIELEFELD, PADERBORN, READER_PB, STAFF_BI, STAFF_PB, SYSTEM_PB, Registry

pytestmark = pytest.mark.integration

OWN = f"/v1/municipalities/{PADERBORN}/practice-examples"
NETWORK = "/v1/network/practice-examples"
READER_ELSEWHERE = auth_header(["05315000"], "reader")
"""A reader of a third municipality (Köln): a member of the network, not of the author's municipality."""


def example(**changes: Any) -> dict[str, Any]:
    """Return a valid practice example."""
    body: dict[str, Any] = {
        "title": "Ehrenamtsbörse im Rathausfoyer",
        "field": "Soziales",
        "what_was_done": "Zweimal im Jahr stellen sich Vereine im Foyer vor; Interessierte kommen ohne Anmeldung.",
        "what_it_took": "Zwei Kolleginnen je drei Tage, 400 Euro für Stellwände und Kaffee.",
        "what_worked": "Persönliche Gespräche statt Flyer; die Termine am Samstagvormittag.",
        "contact": {"name": "Petra Beispiel", "email": "anlaufstelle@paderborn.example", "phone": "05251 88-0"},
    }
    body.update(changes)
    return body


async def _publish(registry: Registry, **changes: Any) -> dict[str, Any]:
    r = await registry.client.post(OWN, json=example(**changes), headers=STAFF_PB)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_staff_publish_and_every_network_member_reads_it(registry: Registry) -> None:
    """A published example carries the municipality's kind and name, an ETag; readers anywhere in the network see it."""
    r = await registry.client.post(OWN, json=example(), headers=STAFF_PB)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["ETag"] == '"1"'
    assert r.headers["Location"] == f"{NETWORK}/{created['id']}"
    assert created["municipality"] == PADERBORN
    assert created["municipality_kind"] == "Stadt"
    assert created["municipality_name"] == "Paderborn"
    assert created["state"] == "published"
    assert "search" not in created
    assert "created_by" not in created
    for headers in (READER_PB, READER_ELSEWHERE, STAFF_BI, ADMIN):
        got = await registry.client.get(f"{NETWORK}/{created['id']}", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["contact"]["email"] == "anlaufstelle@paderborn.example"
        listed = await registry.client.get(NETWORK, headers=headers)
        assert created["id"] in [e["id"] for e in listed.json()["items"]]
    # A connected system is no member of the network; no token is no one.
    assert (await registry.client.get(NETWORK, headers=SYSTEM_PB)).status_code == 403
    assert (await registry.client.get(NETWORK)).status_code == 401


async def test_search_finds_words_in_title_and_text_and_filters_by_field_and_kind(registry: Registry) -> None:
    """Every word must occur (case and umlauts folded); field, kind and municipality narrow the list."""
    boerse = await _publish(registry)
    fire = await _publish(
        registry,
        title="Nachwuchs für die FEUERWEHR",
        field="Feuerwehr/Katastrophenschutz",
        what_was_done="Schnuppertage mit der Jugendfeuerwehr an Grundschulen.",
    )
    bielefeld = await registry.client.post(
        f"/v1/municipalities/{BIELEFELD}/practice-examples",
        json=example(title="Lesepaten in Kitas", field="Bildung"),
        headers=STAFF_BI,
    )
    assert bielefeld.status_code == 201, bielefeld.text

    async def ids(**params: Any) -> list[str]:
        r = await registry.client.get(NETWORK, params=params, headers=READER_ELSEWHERE)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    assert await ids(q="feuerwehr grundschulen") == [fire["id"]]
    assert await ids(q="Rathausfoyer") == [boerse["id"]]
    assert await ids(q="rathaus flyer") == [boerse["id"]]  # "flyer" is in what worked
    assert await ids(q="feuerwehr kitas") == []
    assert await ids(q="[a-z]*") == []  # taken as text, not as a pattern
    assert await ids(field="Feuerwehr/Katastrophenschutz") == [fire["id"]]
    assert set(await ids(kind="Stadt")) == {boerse["id"], fire["id"], bielefeld.json()["id"]}
    assert await ids(kind="Kreis") == []
    assert set(await ids(municipality=BIELEFELD)) == {bielefeld.json()["id"]}
    page = await registry.client.get(NETWORK, params={"limit": 1}, headers=READER_PB)
    assert page.json()["total"] == 3
    assert len(page.json()["items"]) == 1
    bad = await registry.client.get(NETWORK, params={"field": "Schach"}, headers=READER_PB)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_the_author_changes_with_if_match_and_a_stale_etag_is_refused(registry: Registry) -> None:
    """PATCH with the current ETag changes and returns the next; an old one answers 412 and changes nothing."""
    created = await _publish(registry)
    url = f"{OWN}/{created['id']}"
    r = await registry.client.patch(
        url, json={"title": "Ehrenamtsbörse im Rathaus"}, headers={**STAFF_PB, "If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    assert r.json()["title"] == "Ehrenamtsbörse im Rathaus"
    stale = await registry.client.patch(url, json={"title": "Zu spät"}, headers={**STAFF_PB, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")
    # Without If-Match the change goes on the current revision; the search follows the new text.
    assert (await registry.client.patch(url, json={"what_worked": "Musik im Foyer"}, headers=STAFF_PB)).json()[
        "revision"
    ] == 3
    found = await registry.client.get(NETWORK, params={"q": "musik"}, headers=READER_PB)
    assert [e["id"] for e in found.json()["items"]] == [created["id"]]
    assert (await registry.client.get(f"{NETWORK}/{created['id']}", headers=READER_PB)).json()["title"] == (
        "Ehrenamtsbörse im Rathaus"
    )


async def test_readers_and_other_municipalities_cannot_write(registry: Registry) -> None:
    """A reader gets 403; Bielefeld's staff get 404 for Paderborn's example by either path; nothing changes."""
    created = await _publish(registry)
    url = f"{OWN}/{created['id']}"
    assert (await registry.client.post(OWN, json=example(), headers=READER_PB)).status_code == 403
    assert (await registry.client.patch(url, json={"title": "Leser"}, headers=READER_PB)).status_code == 403
    assert (await registry.client.delete(url, headers=READER_PB)).status_code == 403
    assert (await registry.client.patch(url, json={"title": "Fremd"}, headers=STAFF_BI)).status_code == 404
    assert (await registry.client.delete(url, headers=STAFF_BI)).status_code == 404
    elsewhere = f"/v1/municipalities/{BIELEFELD}/practice-examples/{created['id']}"
    assert (await registry.client.patch(elsewhere, json={"title": "Fremd"}, headers=STAFF_BI)).status_code == 404
    assert (await registry.client.delete(elsewhere, headers=STAFF_BI)).status_code == 404
    got = await registry.client.get(f"{NETWORK}/{created['id']}", headers=READER_PB)
    assert got.json()["title"] == created["title"]
    assert got.json()["revision"] == 1


async def test_withdrawn_examples_are_hidden_and_cannot_change(registry: Registry) -> None:
    """DELETE withdraws (204, with If-Match too); the example is gone from search and detail, a change is 404."""
    created = await _publish(registry)
    url = f"{OWN}/{created['id']}"
    assert (await registry.client.delete(url, headers={**STAFF_PB, "If-Match": '"7"'})).status_code == 412
    assert (await registry.client.delete(url, headers={**STAFF_PB, "If-Match": '"1"'})).status_code == 204
    assert (await registry.client.get(f"{NETWORK}/{created['id']}", headers=READER_PB)).status_code == 404
    listed = await registry.client.get(NETWORK, headers=READER_PB)
    assert created["id"] not in [e["id"] for e in listed.json()["items"]]
    assert (await registry.client.patch(url, json={"title": "Wieder da"}, headers=STAFF_PB)).status_code == 404
    assert (await registry.client.delete(url, headers=STAFF_PB)).status_code == 404
    stored = await registry.db["practice_examples"].find_one({"_id": created["id"]})
    assert stored is not None
    assert stored["state"] == "withdrawn"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"title": "ab"}, "title"),
        ({"field": "Schach"}, "field"),
        ({"what_was_done": ""}, "what_was_done"),
        ({"what_it_took": "x" * 4001}, "what_it_took"),
        ({"contact": {"name": "Petra", "email": "keine-adresse"}}, "contact"),
        ({"municipality_kind": "Kreis"}, "municipality_kind"),
    ],
)
async def test_bad_input_is_a_422_problem(registry: Registry, body: dict[str, Any], where: str) -> None:
    """A short title, an unknown field, empty or overlong text, a bad e-mail, a kind of one's own: 422 problem+json."""
    r = await registry.client.post(OWN, json=example(**body), headers=STAFF_PB)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert where in r.text


async def test_bad_changes_are_422_problems(registry: Registry) -> None:
    """A change that empties a field or sends an If-Match that is no ETag is refused with 422."""
    created = await _publish(registry)
    url = f"{OWN}/{created['id']}"
    emptied = await registry.client.patch(url, json={"title": None}, headers=STAFF_PB)
    assert emptied.status_code == 422, emptied.text
    odd = await registry.client.patch(url, json={"title": "Neu"}, headers={**STAFF_PB, "If-Match": "eins"})
    assert odd.status_code == 422
    assert odd.headers["content-type"].startswith("application/problem+json")

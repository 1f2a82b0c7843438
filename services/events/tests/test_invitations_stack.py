"""Proofs on the real stack: capacity under concurrent RSVPs, refused links, attendance (issuing 10,000: test_issue_kill_stack.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engagiert.events import domain
from engagiert.events.bench import event_body, seed_members, wait_outbox_empty
from engagiert.events.repository import EVENTS, INVITATIONS, SEATS_TAKEN

Running = Any  # the fixture type lives in conftest.py (not importable under importlib mode)

pytestmark = pytest.mark.integration


async def _event(r: Running, **kw: Any) -> str:
    created = await r.client.post(r.base, json=event_body(**kw), headers=r.headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def _rsvp_tokens(r: Running, event_id: str, status: str) -> dict[str, str]:
    """Return invitation id -> RSVP token for an event's invitations of ``status``, built as the mail's link."""
    from engagiert.events.services import InvitationMails

    uc: InvitationMails = r.app.state.use_cases().invitation_mails
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    docs = await r.db[INVITATIONS].find({"event_id": event_id, "status": status}).to_list(None)
    return {d["_id"]: _token(uc.rsvp_url(d["_id"], event["rsvp_deadline"])) for d in docs}


async def seats(r: Running, event_id: str) -> int:
    """Return the event's seat counter, read from the store."""
    doc = await r.db[EVENTS].find_one({"_id": event_id})
    assert doc is not None
    return int(doc[SEATS_TAKEN])


async def test_concurrent_rsvps_never_overbook_and_a_decline_promotes_the_next_in_line(running: Running) -> None:
    """Thirty invitees accept with two guests at once: ten fit (30 seats), the rest wait; a decline promotes in order."""
    r = running
    await seed_members(r.db, r.ags, 40)
    event_id = await _event(r, capacity=30, guests=2)
    issued = await r.client.post(
        f"{r.base}/{event_id}/invitations/issue", json={"min_hours_last_12_months": 1}, headers=r.headers
    )
    assert issued.json()["invited"] == 30
    assert issued.json()["waitlisted"] == 10

    tokens = await _rsvp_tokens(r, event_id, "invited")
    answers = await asyncio.gather(
        *(r.client.post(f"/rsvp/{t}", data={"answer": "accept", "guests": "2"}) for t in tokens.values())
    )
    assert all(a.status_code == 200 for a in answers)
    accepted = await r.db[INVITATIONS].find({"event_id": event_id, "status": "accepted"}).to_list(None)
    assert await seats(r, event_id) == 30 == sum(1 + a["guests"] for a in accepted)
    assert len(accepted) == 10
    assert await r.db[INVITATIONS].count_documents({"event_id": event_id, "status": "waitlisted"}) == 30

    # A decline frees three seats and offers a place to the first of the original waitlist.
    first_waiting = await r.db[INVITATIONS].find_one(
        {"event_id": event_id, "status": "waitlisted"}, sort=[("waitlist_position", 1)]
    )
    assert first_waiting is not None
    assert first_waiting["seq"] == 31
    declined = await r.client.post(f"/rsvp/{tokens[accepted[0]['_id']]}", data={"answer": "decline"})
    assert declined.status_code == 200
    promoted = await r.db[INVITATIONS].find_one({"_id": first_waiting["_id"]})
    assert promoted is not None
    assert promoted["status"] == "invited"
    assert await seats(r, event_id) == 27

    # The promoted member takes the seats; nobody else gets them.
    token = (await _rsvp_tokens(r, event_id, "invited"))[first_waiting["_id"]]
    page = await r.client.post(f"/rsvp/{token}?lang=en", data={"answer": "accept", "guests": "2"})
    assert "You accepted (2 guests)" in page.text
    assert await seats(r, event_id) == 30

    # Staff check one in; the venue list shows it.
    checked = await r.client.post(
        f"{r.base}/{event_id}/invitations/{first_waiting['_id']}/attendance", json={"attended": True}, headers=r.headers
    )
    assert checked.status_code == 200, checked.text
    venue = await r.client.get(f"{r.base}/{event_id}/attendees.csv", params={"dialect": "excel-de"}, headers=r.headers)
    csv_text = venue.content.decode("utf-8-sig")  # German Excel's dialect: BOM and semicolons
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("invitation_id;member_id;family_name")
    assert len(lines) == 1 + 10
    assert any(line.startswith(first_waiting["_id"]) and line.endswith(";2;ja") for line in lines)

    summary = (await r.client.get(f"{r.base}/{event_id}", headers=r.headers)).json()
    assert summary["invitations"]["accepted"] == 10
    assert summary["seats_taken"] == 30
    await wait_outbox_empty(r.db, INVITATIONS)


async def test_rsvp_page_renders_in_german_and_english_and_refuses_bad_links(running: Running) -> None:
    """The page is German by default, English with ?lang=en; forged, altered, expired and malformed links are refused."""
    r = running
    await seed_members(r.db, r.ags, 2)
    event_id = await _event(r, capacity=5, guests=1)
    await r.client.post(f"{r.base}/{event_id}/invitations/issue", json={"member_ids": ["m000000"]}, headers=r.headers)
    token = next(iter((await _rsvp_tokens(r, event_id, "invited")).values()))

    page = await r.client.get(f"/rsvp/{token}")
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert "Ich komme gern" in page.text
    assert 'name="guests"' in page.text
    head = await r.client.head(f"/rsvp/{token}")  # a mail server's link check asks with HEAD
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/html")
    english = await r.client.get(f"/rsvp/{token}?lang=en")
    assert '<html lang="en">' in english.text
    assert "I will come" in english.text

    secret = r.settings.link_secret.get_secret_value()
    later = datetime.now(UTC) + timedelta(days=3)
    inv_id = f"{event_id}:m000000"
    forged = domain.sign_link("not-our-secret", purpose="rsvp", subject=inv_id, expires_at=later)
    other = domain.sign_link(secret, purpose="rsvp", subject=f"{event_id}:m000001", expires_at=later)
    altered = other.split(".")[0] + "." + token.split(".")[1]
    expired = domain.sign_link(
        secret, purpose="rsvp", subject=inv_id, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    card = domain.sign_link(secret, purpose="card", subject=inv_id, expires_at=later)
    for bad, status in [(forged, 403), (altered, 403), (expired, 410), (card, 403), ("nonsense", 400)]:
        got = await r.client.get(f"/rsvp/{bad}")
        assert got.status_code == status, bad
        assert 'role="alert"' in got.text
        posted = await r.client.post(f"/rsvp/{bad}", data={"answer": "accept"})
        assert posted.status_code == status
    too_many = await r.client.post(f"/rsvp/{token}", data={"answer": "accept", "guests": "2"})
    assert too_many.status_code == 422
    invitation = await r.db[INVITATIONS].find_one({"_id": inv_id})
    assert invitation is not None
    assert invitation["status"] == "invited"


async def test_events_are_scoped_to_the_callers_municipality(running: Running) -> None:
    """Another municipality's token gets a 404 for an existing event; invalid input is a 422 problem."""
    from engagiert.shared.testing import auth_header

    r = running
    event_id = await _event(r, capacity=5)
    foreign = await r.client.get(f"{r.base}/{event_id}", headers=auth_header(["05711000"], "staff"))
    assert foreign.status_code == 404
    bad = await r.client.post(r.base, json={**event_body(capacity=0)}, headers=r.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    cancel = await r.client.patch(
        f"{r.base}/{event_id}", json={"status": "cancelled", "reason": "Unwetter"}, headers=r.headers
    )
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    again = await r.client.patch(f"{r.base}/{event_id}", json={"status": "scheduled"}, headers=r.headers)
    assert again.status_code == 409

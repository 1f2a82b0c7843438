"""Proofs on the real stack: RSVP reminders requested and withdrawn, cancellation mails to every invitee once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engagiert.events import domain
from engagiert.events.bench import event_body, seed_members, wait_outbox_empty
from engagiert.events.repository import EVENTS, INVITATIONS
from engagiert.shared import topics
from engagiert.shared.contracts import NotificationCancelRequested, NotificationRequested, RecognitionEventCancelled

Running = Any  # the fixture types live in conftest.py (not importable under importlib mode)
Window = Any

pytestmark = pytest.mark.integration


async def _event(r: Running, *, capacity: int, members: int) -> str:
    """Seed members, create a scheduled event and issue invitations to all of them (twice: idempotent)."""
    await seed_members(r.db, r.ags, members)
    created = await r.client.post(r.base, json=event_body(capacity=capacity, guests=0), headers=r.headers)
    assert created.status_code == 201, created.text
    event_id = str(created.json()["id"])
    for _ in range(2):
        issued = await r.client.post(
            f"{r.base}/{event_id}/invitations/issue", json={"min_hours_last_12_months": 1}, headers=r.headers
        )
        assert issued.status_code == 200, issued.text
    assert issued.json()["already_invited"] == members
    return event_id


async def _answer(r: Running, event_id: str, member_id: str, answer: str) -> None:
    """Answer an invitation through the public RSVP page, with the mail's link."""
    uc = r.app.state.use_cases().invitation_mails
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    token = uc.rsvp_url(f"{event_id}:{member_id}", event["rsvp_deadline"]).rsplit("/", 1)[1]
    page = await r.client.post(f"/rsvp/{token}", data={"answer": answer, "guests": "0"})
    assert page.status_code == 200, page.text


async def _published(r: Running, window: Window) -> list[dict[str, Any]]:
    """Return this test's records in ``window`` once the relay has published everything pending."""
    await wait_outbox_empty(r.db, INVITATIONS)
    await wait_outbox_empty(r.db, EVENTS)
    return [e for e in await window.read() if e["data"].get("municipality") == r.ags]


def _templates(records: list[dict[str, Any]], template: str) -> list[dict[str, Any]]:
    return [e["data"] for e in records if e["type"] == NotificationRequested.TYPE and e["data"]["template"] == template]


def _cancels(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in records if e["type"] == NotificationCancelRequested.TYPE]


async def test_open_invitations_are_reminded_before_the_deadline_and_an_answer_withdraws_the_reminder(
    running: Running, topic_window: Any
) -> None:
    """Offers (at issue and on promotion) request one reminder each; accepting or declining cancels it by its key."""
    r = running
    window = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    event_id = await _event(r, capacity=2, members=3)  # m000000, m000001 invited; m000002 waits
    await _answer(r, event_id, "m000000", "accept")
    await _answer(r, event_id, "m000001", "decline")  # promotes m000002

    records = await _published(r, window)
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    remind_at = event["rsvp_deadline"] - timedelta(hours=r.settings.rsvp_reminder_hours)
    reminders = _templates(records, "rsvp-reminder")
    assert Counter(d["member_id"] for d in reminders) == {"m000000": 1, "m000001": 1, "m000002": 1}
    for d in reminders:
        assert d["cancel_key"] == f"rsvp-reminder:{event_id}:{d['member_id']}"
        assert datetime.fromisoformat(d["not_before"]) == remind_at
        assert d["params"]["rsvp_url"].startswith("http://testserver/rsvp/")
    cancels = _cancels(records)
    assert sorted((c["member_id"], c["cancel_key"]) for c in cancels) == [
        ("m000000", f"rsvp-reminder:{event_id}:m000000"),
        ("m000001", f"rsvp-reminder:{event_id}:m000001"),
    ]
    # A member's requests share a partition (keyed by member): each cancel comes after its reminder.
    for member in ("m000000", "m000001"):
        mine = [e for e in records if e["data"]["member_id"] == member]
        kinds = [e["data"].get("template") or "cancel" for e in mine]
        assert kinds.index("rsvp-reminder") < kinds.index("cancel"), kinds
    assert len(_templates(records, "invitation")) == 2
    assert len(_templates(records, "waitlist-promoted")) == 1


async def test_cancelling_an_event_mails_every_invitee_still_concerned_once_and_withdraws_open_reminders(
    running: Running, topic_window: Any
) -> None:
    """Accepted, invited and waitlisted invitees get the cancellation mail once; a declined one does not."""
    r = running
    event_id = await _event(r, capacity=2, members=4)  # m0, m1 invited; m2, m3 wait
    await _answer(r, event_id, "m000000", "accept")
    await _answer(r, event_id, "m000001", "decline")  # promotes m000002
    await wait_outbox_empty(r.db, INVITATIONS)
    requests = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    facts = await topic_window(topics.EVENTS_RECOGNITION).open()

    for _ in range(2):
        cancelled = await r.client.patch(
            f"{r.base}/{event_id}", json={"status": "cancelled", "reason": "Unwetter"}, headers=r.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert "_cancel_fanout" not in cancelled.json()

    records = await _published(r, requests)
    mails = _templates(records, "event-cancelled")
    assert Counter(d["member_id"] for d in mails) == {"m000000": 1, "m000002": 1, "m000003": 1}
    assert {d["params"]["reason"] for d in mails} == {"Unwetter"}
    assert {d["params"]["event_title"] for d in mails} == {"Tag des Ehrenamts"}
    assert [(c["member_id"], c["cancel_key"]) for c in _cancels(records)] == [
        ("m000002", f"rsvp-reminder:{event_id}:m000002")
    ]
    assert len(records) == 4
    fact_types = [e["type"] for e in await facts.read() if e["data"].get("event_id") == event_id]
    assert fact_types == [RecognitionEventCancelled.TYPE]
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    assert "_cancel_fanout" not in event

    # A crash after the cancelling write and before one invitee's write: the sweep finishes it, once.
    await r.db[INVITATIONS].update_one({"_id": f"{event_id}:m000003"}, {"$unset": {"cancellation_notified_at": ""}})
    await r.db[EVENTS].update_one({"_id": event_id}, {"$set": {"_cancel_fanout": True}})
    resumed = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    uc = r.app.state.use_cases().invitation_mails
    assert await uc.finish_cancellations() == 1
    assert await uc.finish_cancellations() == 0
    again = await _published(r, resumed)
    assert [(e["id"], e["data"]["member_id"]) for e in again] == [(f"{event_id}:m000003:event-cancelled", "m000003")]

    page = await r.client.get(
        uc.rsvp_url(f"{event_id}:m000003", event["rsvp_deadline"]).replace("http://testserver", "")
    )
    assert page.status_code == 409


async def test_a_moved_deadline_moves_the_open_reminders_once(running: Running, topic_window: Any) -> None:
    """Only invitations still open get their reminder withdrawn and requested anew for the new deadline, once."""
    r = running
    event_id = await _event(r, capacity=2, members=3)  # m000000, m000001 invited; m000002 waits
    await _answer(r, event_id, "m000000", "accept")
    await wait_outbox_empty(r.db, INVITATIONS)
    requests = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    moved = event["rsvp_deadline"] + timedelta(days=2)
    for _ in range(2):  # the second PATCH changes nothing
        patched = await r.client.patch(
            f"{r.base}/{event_id}", json={"rsvp_deadline": moved.isoformat()}, headers=r.headers
        )
        assert patched.status_code == 200, patched.text
        assert "_reschedule_reminders" not in patched.json()

    records = await _published(r, requests)
    inv = f"{event_id}:m000001"
    assert [(e["type"], e["id"] if e["type"] == NotificationRequested.TYPE else None) for e in records] == [
        (NotificationCancelRequested.TYPE, None),
        (NotificationRequested.TYPE, f"{inv}:rsvp-reminder:{moved.isoformat()}"),
    ]
    cancel, reminder = records[0]["data"], records[1]["data"]
    assert (cancel["member_id"], cancel["cancel_key"]) == ("m000001", f"rsvp-reminder:{inv}")
    assert (reminder["member_id"], reminder["template"], reminder["cancel_key"]) == (
        "m000001",
        "rsvp-reminder",
        f"rsvp-reminder:{inv}",
    )
    assert datetime.fromisoformat(reminder["not_before"]) == moved - timedelta(hours=r.settings.rsvp_reminder_hours)
    # The new reminder's link stays valid until the new deadline.
    token = reminder["params"]["rsvp_url"].rsplit("/", 1)[1]
    _, expires = domain.verify_link(
        r.settings.link_secret.get_secret_value(), token, purpose="rsvp", now=datetime.now(UTC)
    )
    assert expires == moved.replace(microsecond=0)

    # Resumed after a crash between the event's write and the invitations': once more, not twice.
    await r.db[EVENTS].update_one({"_id": event_id}, {"$set": {"_reschedule_reminders": True}})
    again = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    uc = r.app.state.use_cases().invitation_mails
    assert await uc.finish_reschedules() == 0  # every open reminder already follows the deadline
    await r.db[INVITATIONS].update_one({"_id": inv}, {"$unset": {"reminder_deadline": ""}})
    await r.db[EVENTS].update_one({"_id": event_id}, {"$set": {"_reschedule_reminders": True}})
    assert await uc.finish_reschedules() == 1
    assert await uc.finish_reschedules() == 0
    resumed = await _published(r, again)
    assert [e["id"] for e in resumed if e["type"] == NotificationRequested.TYPE] == [
        f"{inv}:rsvp-reminder:{moved.isoformat()}"
    ]


async def test_a_new_time_or_venue_mails_every_open_invitee_once_per_change_and_other_fields_mail_nobody(
    running: Running, topic_window: Any
) -> None:
    """Accepted, invited and waitlisted hear of each change (SEQUENCE 1, 2); declined, capacity or notes: no mail."""
    r = running
    event_id = await _event(r, capacity=2, members=4)  # m0, m1 invited; m2, m3 wait
    await _answer(r, event_id, "m000000", "accept")
    await _answer(r, event_id, "m000001", "decline")  # promotes m000002
    await wait_outbox_empty(r.db, INVITATIONS)
    requests = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    later = event["starts_at"] + timedelta(hours=1)

    for _ in range(2):  # the second PATCH changes nothing
        patched = await r.client.patch(f"{r.base}/{event_id}", json={"starts_at": later.isoformat()}, headers=r.headers)
        assert patched.status_code == 200, patched.text
        assert patched.json()["calendar_sequence"] == 1
        assert "_change_fanout" not in patched.json()
    for body in ({"capacity": 3}, {"notes": "Bitte den Eingang am Marienplatz nutzen."}):
        patched = await r.client.patch(f"{r.base}/{event_id}", json=body, headers=r.headers)
        assert patched.status_code == 200, patched.text
    records = await _published(r, requests)
    changed = _templates(records, "event-changed")
    assert Counter(d["member_id"] for d in changed) == {"m000000": 1, "m000002": 1, "m000003": 1}
    assert {d["params"]["calendar_sequence"] for d in changed} == {1}
    assert {datetime.fromisoformat(str(d["params"]["starts_at"])) for d in changed} == {later}
    # The one still to answer (m000002, promoted) has the reminder with the new time, the old one withdrawn.
    reminders = _templates(records, "rsvp-reminder")
    assert [(d["member_id"], d["params"]["calendar_sequence"]) for d in reminders] == [("m000002", 1)]
    assert [c["member_id"] for c in _cancels(records)] == ["m000002"]

    second = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    patched = await r.client.patch(f"{r.base}/{event_id}", json={"venue": "Paderhalle"}, headers=r.headers)
    assert patched.json()["calendar_sequence"] == 2
    again = _templates(await _published(r, second), "event-changed")
    assert sorted((d["member_id"], d["params"]["calendar_sequence"], d["params"]["venue"]) for d in again) == [
        ("m000000", 2, "Paderhalle"),
        ("m000002", 2, "Paderhalle"),
        ("m000003", 2, "Paderhalle"),
    ]

    # Resumed after a crash between the event's write and one invitation's: that one once more, not twice.
    await r.db[INVITATIONS].update_one({"_id": f"{event_id}:m000003"}, {"$set": {"change_notified_sequence": 1}})
    await r.db[EVENTS].update_one({"_id": event_id}, {"$set": {"_change_fanout": True}})
    resumed = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    uc = r.app.state.use_cases().invitation_mails
    assert await uc.finish_changes() == 1
    assert await uc.finish_changes() == 0
    assert [e["id"] for e in await _published(r, resumed)] == [f"{event_id}:m000003:event-changed:2"]

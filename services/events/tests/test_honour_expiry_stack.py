"""Proofs on the real stack: granted honours expire after their last valid day and renewal is proposed before, once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engagiert.events.bench import seed_members, wait_outbox_empty
from engagiert.events.repository import HONOURS, MEMBERS, Repository
from engagiert.events.services import EventsService
from engagiert.shared import topics
from engagiert.shared.contracts import HonourExpired, HonourProposed, NotificationRequested

Running = Any  # the fixture types live in conftest.py (not importable under importlib mode)

pytestmark = pytest.mark.integration

# Far enough ahead that the app's own loop (real clock) finds none of these honours due.
TODAY = date(2031, 6, 1)
CLOCK = datetime(2031, 6, 1, 9, 30, tzinfo=UTC)


def _granted(r: Running, member_id: str, kind: str, valid_until: date | None, **extra: Any) -> dict[str, Any]:
    return {
        "_id": f"{member_id}:{kind}",
        "municipality": r.ags,
        "member_id": member_id,
        "kind": kind,
        "status": "granted",
        "reason": "Testfall",
        "card_number": f"TEST-{member_id}",
        "valid_from": "2028-06-01",
        "valid_until": valid_until.isoformat() if valid_until else None,
        "granted_at": CLOCK - timedelta(days=1000),
        **extra,
    }


def _use_cases(r: Running, now: datetime) -> EventsService:
    """Return the use cases on the test's store with a clock of our choosing (the relay publishes their writes)."""
    return EventsService(Repository(r.db), r.settings, notify=r.app.state.runtime.relay.notify, clock=lambda: now)


async def test_expiry_and_renewal_happen_once_at_their_edges_and_the_jubilaeumskarte_never_expires(
    running: Running, topic_window: Any
) -> None:
    """Past its last day a card expires (fact once); within 90 days a renewal is proposed and mailed once."""
    r = running
    await seed_members(r.db, r.ags, 6)
    await r.db[MEMBERS].update_one({"_id": "m000005"}, {"$set": {"status": "left"}})
    card = "ehrenamtskarte"
    await r.db[HONOURS].insert_many(
        [
            # expired yesterday; its renewal was proposed long ago
            _granted(r, "m000000", card, TODAY - timedelta(days=1), renewal_proposed_at=CLOCK - timedelta(days=90)),
            _granted(r, "m000001", card, TODAY),  # today is its last valid day
            _granted(r, "m000002", card, TODAY + timedelta(days=90)),  # the renewal period's last day
            _granted(r, "m000003", card, TODAY + timedelta(days=91)),  # not yet
            _granted(r, "m000004", "jubilaeums-ehrenamtskarte", None),  # lifelong
            _granted(r, "m000005", card, TODAY + timedelta(days=30)),  # the member left: no renewal
        ]
    )
    facts = await topic_window(topics.EVENTS_RECOGNITION).open()
    requests = await topic_window(topics.NOTIFICATIONS_REQUESTS).open()
    uc = _use_cases(r, CLOCK)

    first = await uc.run_due_work()
    again = await uc.run_due_work()
    assert first == {
        "cancellation_mails": 0,
        "change_mails": 0,
        "reminders_rescheduled": 0,
        "renewals_proposed": 2,
        "honours_expired": 1,
    }
    assert again == {
        "cancellation_mails": 0,
        "change_mails": 0,
        "reminders_rescheduled": 0,
        "renewals_proposed": 0,
        "honours_expired": 0,
    }

    await wait_outbox_empty(r.db, HONOURS)
    mine = [e for e in await facts.read() if e["data"].get("municipality") == r.ags]
    expired = [e["data"] for e in mine if e["type"] == HonourExpired.TYPE]
    assert [(d["honour_id"], d["expired_on"]) for d in expired] == [(f"m000000:{card}", "2031-06-01")]
    proposed = [e["data"] for e in mine if e["type"] == HonourProposed.TYPE]
    assert sorted((d["member_id"], d["renewal_of"]) for d in proposed) == [
        ("m000001", f"m000001:{card}"),
        ("m000002", f"m000002:{card}"),
    ]
    assert len(mine) == 3
    mails = [
        e["data"]
        for e in await requests.read()
        if e["data"].get("municipality") == r.ags and e["type"] == NotificationRequested.TYPE
    ]
    assert Counter((d["member_id"], d["template"]) for d in mails) == {
        ("m000001", "honour-renewal"): 1,
        ("m000002", "honour-renewal"): 1,
    }
    assert {d["params"]["honour_kind"] for d in mails} == {"ehrenamtskarte"}
    assert {d["params"]["valid_until"] for d in mails} == {"2031-06-01", "2031-08-30"}

    statuses = {d["_id"]: d["status"] for d in await r.db[HONOURS].find({}).to_list(None)}
    assert statuses == {
        f"m000000:{card}": "expired",
        f"m000001:{card}": "granted",
        f"m000002:{card}": "granted",
        f"m000003:{card}": "granted",
        "m000004:jubilaeums-ehrenamtskarte": "granted",
        f"m000005:{card}": "granted",
        f"m000001:{card}:r2031-06-01": "proposed",
        f"m000002:{card}:r2031-08-30": "proposed",
    }

    # Staff grant a renewal: it starts the day after the old card's last day.
    granted = await r.client.post(
        f"/v1/municipalities/{r.ags}/honours/m000002:{card}:r2031-08-30/grant", json={}, headers=r.headers
    )
    assert granted.status_code == 200, granted.text
    assert (granted.json()["valid_from"], granted.json()["valid_until"]) == ("2031-08-31", "2034-08-30")
    verified = await r.client.get(f"/v1/honours/verify/{granted.json()['verification_code']}")
    assert verified.status_code == 200, verified.text

    # Decades later every card has expired once, the lifelong one has not.
    late = _use_cases(r, datetime(2099, 1, 1, tzinfo=UTC))
    assert await late.run_due_work() == {
        "cancellation_mails": 0,
        "change_mails": 0,
        "reminders_rescheduled": 0,
        "renewals_proposed": 2,
        "honours_expired": 5,
    }
    assert await late.run_due_work() == {
        "cancellation_mails": 0,
        "change_mails": 0,
        "reminders_rescheduled": 0,
        "renewals_proposed": 0,
        "honours_expired": 0,
    }
    lifelong = await r.db[HONOURS].find_one({"_id": "m000004:jubilaeums-ehrenamtskarte"})
    assert lifelong is not None
    assert lifelong["status"] == "granted"
    assert "renewal_proposed_at" not in lifelong


async def test_the_background_loop_started_with_the_app_expires_a_card_and_leaves_the_lifelong_one(
    scheduled: Running,
) -> None:
    """The app's own loop (every 0.2 s here) expires a card whose last day was yesterday, and nothing else."""
    r = scheduled
    await seed_members(r.db, r.ags, 2)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    await r.db[HONOURS].insert_many(
        [
            _granted(r, "m000000", "ehrenamtskarte", yesterday),
            _granted(r, "m000001", "jubilaeums-ehrenamtskarte", None),
        ]
    )
    for _ in range(300):  # waits for the loop's next round (0.2 s apart); fails after a minute
        card = await r.db[HONOURS].find_one({"_id": "m000000:ehrenamtskarte"})
        assert card is not None
        if card["status"] == "expired":
            break
        await asyncio.sleep(0.2)
    assert card["status"] == "expired"
    assert card["expired_on"] == (yesterday + timedelta(days=1)).isoformat()
    lifelong = await r.db[HONOURS].find_one({"_id": "m000001:jubilaeums-ehrenamtskarte"})
    assert lifelong is not None
    assert lifelong["status"] == "granted"

"""Measures issuing invitations to many members and publishing the notification requests they cause,
and the member read model applying hours facts (also for members with a long history).

Run against the dev stack: ``python -m engagiert.events.bench --size 10000`` (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from engagiert.events.config import EventsSettings
from engagiert.events.main import create_app
from engagiert.events.repository import INVITATIONS, MEMBERS
from engagiert.shared.contracts import HoursRecorded, HoursTotals, MemberRegistered, MemberSnapshot
from engagiert.shared.contracts.base import EventData
from engagiert.shared.envelope import Envelope, new_event_id
from engagiert.shared.messaging.outbox import PENDING
from engagiert.shared.testing import StackEndpoints, app_client, auth_header, skip_history
from engagiert.shared.testing.stack import resolve_stack
from engagiert.shared.topics import REGISTRY_ENGAGEMENT, REGISTRY_MEMBERS

FIELDS = ("Sport", "Kultur", "Soziales", "Umwelt", "Jugendarbeit")
READ_MODEL_BATCH = 500
"""Facts per call of the read model's use case (the consumer's ``consumer_max_records``)."""


def member_doc(member_id: str, municipality: str, *, hours: float, since: date, today: date) -> dict[str, Any]:
    """Return a read-model member document as the handlers would have built it."""
    return {
        "_id": member_id,
        "municipality": municipality,
        "revision": 1,
        "given_name": f"Vorname{member_id[-4:]}",
        "family_name": f"Nachname{member_id[-4:]}",
        "date_of_birth": "1980-05-17",
        "status": "active",
        "engagements": [
            {
                "engagement_id": f"{member_id}-e",
                "organisation_id": "org-1",
                "organisation_name": "Verein",
                "field": FIELDS[hash(member_id) % len(FIELDS)],
                "since": since.isoformat(),
                "until": None,
            }
        ],
        "juleica": {"holder": False, "expires_on": None},
        "hours": [{"entry_id": f"{member_id}-h", "date": (today - timedelta(days=30)).isoformat(), "hours": hours}],
    }


async def seed_members(db: AsyncDatabase[dict[str, Any]], municipality: str, size: int, *, hours: float = 60) -> None:
    """Write ``size`` members straight into the read model (as if the registry had sent them)."""
    today = datetime.now(UTC).date()
    docs = [
        member_doc(f"m{i:06d}", municipality, hours=hours, since=date(2015, 1, 1), today=today) for i in range(size)
    ]
    for start in range(0, len(docs), 1000):
        await db[MEMBERS].insert_many(docs[start : start + 1000], ordered=False)


def event_body(*, capacity: int, guests: int = 1, title: str = "Tag des Ehrenamts") -> dict[str, Any]:
    """Return the JSON body of a scheduled recognition event a month ahead."""
    starts = datetime.now(UTC) + timedelta(days=30)
    return {
        "kind": "Tag des Ehrenamts",
        "title": title,
        "starts_at": starts.isoformat(),
        "venue": "Historisches Rathaus, Marienplatz 1",
        "capacity": capacity,
        "guests_per_invitee": guests,
        "rsvp_deadline": (starts - timedelta(days=7)).isoformat(),
        "status": "scheduled",
    }


async def wait_outbox_empty(db: AsyncDatabase[dict[str, Any]], collection: str, *, timeout: float = 600) -> None:
    """Wait until the relay has published every pending outbox entry of ``collection``."""
    deadline = time.monotonic() + timeout
    while await db[collection].count_documents({PENDING: True}, limit=1):
        if time.monotonic() > deadline:
            raise TimeoutError(f"outbox of {collection} not drained")
        await asyncio.sleep(0.2)


async def run(stack: StackEndpoints, size: int = 10000, history: int = 0) -> dict[str, Any]:
    """Return the invitation figures (see :func:`issue`) and the read model's for ``size`` hours facts.

    With ``history``, the read model is measured again after each member got that many earlier entries.
    """
    figures = await issue(stack, size)
    seconds = await read_model(stack, facts=size)
    figures.update({"read_model_facts": size, "read_model_s": round(seconds, 2)})
    figures["read_model_facts_per_s"] = round(size / seconds, 1)
    if history:
        with_history = await read_model(stack, facts=size, history=history)
        figures.update(
            {
                "history_entries_per_member": history,
                "read_model_with_history_s": round(with_history, 2),
                "read_model_with_history_facts_per_s": round(size / with_history, 1),
            }
        )
    return figures


async def issue(stack: StackEndpoints, size: int = 10000) -> dict[str, Any]:
    """Issue ``size`` invitations on the real stack; return the seconds to issue and to publish."""
    run_id = uuid.uuid4().hex[:8]
    municipality = f"99{random.randrange(10**6):06d}"
    settings = EventsSettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=f"bench_events_{run_id}",
        consumer_group=f"bench-events-{run_id}",
        outbox_poll_seconds=0.2,
    )
    app = create_app(settings)
    async with app_client(app) as client:
        db = app.state.runtime.db
        try:
            await seed_members(db, municipality, size)
            headers = auth_header([municipality], "staff")
            base = f"/v1/municipalities/{municipality}/events"
            created = await client.post(base, json=event_body(capacity=size), headers=headers)
            created.raise_for_status()
            event_id = created.json()["id"]
            started = time.perf_counter()
            issued = await client.post(
                f"{base}/{event_id}/invitations/issue",
                json={"min_hours_last_12_months": 10},
                headers=headers,
                timeout=600,
            )
            issued.raise_for_status()
            issue_seconds = time.perf_counter() - started
            await wait_outbox_empty(db, INVITATIONS)
            publish_seconds = time.perf_counter() - started
            return {
                "size": size,
                "issued": issued.json()["issued"],
                "issue_seconds": round(issue_seconds, 2),
                "issue_and_publish_seconds": round(publish_seconds, 2),
                # per offer: InvitationIssued, the invitation request and the RSVP reminder request
                "records_published": issued.json()["issued"] + 2 * issued.json()["invited"],
            }
        finally:
            await db.client.drop_database(db.name)


def _envelope(data: EventData) -> Envelope[EventData]:
    """Return ``data`` as the consumer would hand it to the read model."""
    return Envelope(
        id=new_event_id(), type=data.TYPE, source="/bench", time=None, municipality=None, traceparent=None, data=data
    )


async def _apply(service: Any, facts: list[Envelope[EventData]]) -> None:
    """Apply ``facts`` in the consumer's batch size."""
    for start in range(0, len(facts), READ_MODEL_BATCH):
        await service.member_read_model.apply_member_events(facts[start : start + READ_MODEL_BATCH])


async def read_model(stack: StackEndpoints, *, members: int = 50, facts: int = 2000, history: int = 0) -> float:
    """Return the seconds the read model takes to apply ``facts`` hours facts of ``members`` members.

    With ``history``, each member first gets that many earlier entries (over the four years
    before today, not measured), as a member with years of reports has.
    """
    run_id = uuid.uuid4().hex[:8]
    municipality = f"99{random.randrange(10**6):06d}"
    settings = EventsSettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=f"bench_events_rm_{run_id}",
        consumer_group=f"bench-events-rm-{run_id}",
    )
    # The app's own consumers read the registry's topics from their end: only our facts count.
    await skip_history(stack.kafka_bootstrap_servers, settings.group_id, [REGISTRY_MEMBERS, REGISTRY_ENGAGEMENT])
    app = create_app(settings)
    async with app_client(app):
        db = app.state.runtime.db
        try:
            service = app.state.use_cases()
            ids = [f"rm-{run_id}-{i:03d}" for i in range(members)]
            snapshots = [
                MemberSnapshot(member_id=m, municipality=municipality, revision=1, given_name="Erika", family_name="M")
                for m in ids
            ]
            await _apply(service, [_envelope(MemberRegistered(member=s)) for s in snapshots])
            today = datetime.now(UTC).date()

            def fact(i: int, tag: str, on: date) -> Envelope[EventData]:
                return _envelope(
                    HoursRecorded(
                        entry_id=f"{tag}-{i}", member_id=ids[i % members], municipality=municipality,
                        hours=1 + i % 4, date_from=on, reported_by="bench", totals=HoursTotals(),
                    )
                )  # fmt: skip

            earlier = [fact(i, "old", today - timedelta(days=(i * 7) % 1400)) for i in range(history * members)]
            await _apply(service, earlier)
            measured = [fact(i, "new", today - timedelta(days=i % 300)) for i in range(facts)]
            started = time.perf_counter()
            await _apply(service, measured)
            return time.perf_counter() - started
        finally:
            await db.client.drop_database(db.name)


def main() -> None:
    """Print the benchmark's result."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.events.bench", description=__doc__)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--history", type=int, default=0, help="earlier entries per member for a second read-model run")
    args = parser.parse_args()
    from contextlib import ExitStack

    with ExitStack() as exits:
        result = asyncio.run(run(resolve_stack(exits), args.size, args.history))
    print(result)


if __name__ == "__main__":
    main()

"""Proof on the real stack: issuing 10,000 invitations survives a SIGKILL midway; the repeat completes it, once.

The events service runs as a uvicorn process (as ``make up`` runs it) on a database and consumer
group of its own. The test seeds 10,000 members into its read model, starts issuing by criteria
over HTTP, SIGKILLs the process while the invitations are being written, starts it again,
repeats the same command and counts: documents in the store and ``InvitationIssued`` records on
``events.recognition.v1`` (plus, for what the relay has not published yet, in the outboxes).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from engagiert.events.bench import event_body, member_doc, seed_members
from engagiert.events.repository import INVITATIONS, MEMBERS
from engagiert.shared import topics
from engagiert.shared.contracts import InvitationIssued, NotificationRequested
from engagiert.shared.messaging.outbox import OUTBOX, PENDING
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import ServiceProcess, StackEndpoints, auth_header, skip_history

Window = Any  # the fixture type lives in conftest.py (not importable under importlib mode)

pytestmark = pytest.mark.integration

SIZE = 10_000
CRITERIA = {"min_hours_last_12_months": 10, "fields": ["Sport", "Kultur", "Soziales", "Umwelt", "Jugendarbeit"]}
PUBLISH_WAIT = 20  # seconds the relay gets before the rest is counted in the outboxes
# What issuing writes per invitation (offers only; all 10,000 are offers): kind -> (topic, type, template).
RECORDS = {
    "issued": (topics.EVENTS_RECOGNITION, InvitationIssued.TYPE, None),
    "invitation": (topics.NOTIFICATIONS_REQUESTS, NotificationRequested.TYPE, "invitation"),
    "rsvp-reminder": (topics.NOTIFICATIONS_REQUESTS, NotificationRequested.TYPE, "rsvp-reminder"),
}


def _kind(event: dict[str, Any]) -> str | None:
    """Return which of RECORDS a CloudEvent is, or None."""
    for kind, (_, type_, template) in RECORDS.items():
        if event["type"] == type_ and (template is None or event["data"].get("template") == template):
            return kind
    return None


async def test_issuing_10000_is_completed_once_after_the_service_is_killed_midway(
    stack: StackEndpoints, unique: Callable[[str], str], topic_window: Callable[[str], Window]
) -> None:
    """SIGKILL while the invitations are written; restart; repeat: 10,000 invitations, each with its records once."""
    database = unique("test_events_kill").replace("-", "_")
    group = unique("test-events-kill")
    ags = f"99{random.randrange(10**6):06d}"
    headers = auth_header([ags], "staff")
    await skip_history(stack.kafka_bootstrap_servers, group, [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT])
    env = {
        **stack.env(),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "EVENTS_MONGODB_DATABASE": database,
        "EVENTS_CONSUMER_GROUP": group,
        "EVENTS_OUTBOX_POLL_SECONDS": "0.2",
        "EVENTS_SCHEDULER_SECONDS": "3600",
        "EVENTS_PUBLIC_BASE_URL": "https://rsvp.example.org",
    }
    client = create_client(stack.mongodb_url)
    db = client[database]
    figures: dict[str, Any] = {}
    # The first process's relay only publishes when woken (no polling): issuing wakes it after the
    # last insert, which the kill prevents, so the topic shows what issuing caused and not the
    # relay's at-least-once redelivery after a crash (records repeated with the same CloudEvent id,
    # which consumers drop; the shared outbox tests prove that part).
    first = ServiceProcess("engagiert.events.main", env={**env, "EVENTS_OUTBOX_POLL_SECONDS": "3600"})
    second: ServiceProcess | None = None
    try:
        started = time.monotonic()
        await seed_members(db, ags, SIZE)
        today = datetime.now(UTC).date()  # and 50 below the hours threshold, who must not be invited
        await db[MEMBERS].insert_many(
            [member_doc(f"low{i:04d}", ags, hours=5, since=today, today=today) for i in range(50)]
        )
        first.start(wait_ready=90)
        windows = [await topic_window(t).open() for t in (topics.EVENTS_RECOGNITION, topics.NOTIFICATIONS_REQUESTS)]
        base = f"/v1/municipalities/{ags}/events"
        async with httpx.AsyncClient(base_url=first.url, timeout=300) as http:
            created = await http.post(base, json=event_body(capacity=SIZE), headers=headers)
            assert created.status_code == 201, created.text
            event_id = created.json()["id"]
            preview = await http.post(f"{base}/{event_id}/invitations/preview", json=CRITERIA, headers=headers)
            assert preview.status_code == 200, preview.text
            assert (preview.json()["matching"], preview.json()["would_invite"]) == (SIZE, SIZE)
            issuing = asyncio.create_task(
                http.post(f"{base}/{event_id}/invitations/issue", json=CRITERIA, headers=headers)
            )
            # Kill as soon as the first chunk of invitations is in the store, while the rest are being written.
            written = 0
            while written == 0 and not issuing.done():
                written = await db[INVITATIONS].count_documents({"event_id": event_id})
                await asyncio.sleep(0.02)
            first.kill()
            with pytest.raises(httpx.HTTPError):
                await issuing  # the request died with the process
        figures["invitations_seen_before_kill"] = written
        figures["seconds_to_kill"] = round(time.monotonic() - started, 1)
        assert 0 < written < SIZE, f"the kill came too late: {written} written"

        second = ServiceProcess("engagiert.events.main", env=env).start(wait_ready=90)
        async with httpx.AsyncClient(base_url=second.url, timeout=300) as http:
            repeated = await http.post(f"{base}/{event_id}/invitations/issue", json=CRITERIA, headers=headers)
            assert repeated.status_code == 200, repeated.text
            again = await http.post(f"{base}/{event_id}/invitations/issue", json=CRITERIA, headers=headers)
            assert again.status_code == 200, again.text
        # The store may finish the insert command the killed process had sent: count what was there.
        done_before = repeated.json()["already_invited"]
        figures["invitations_left_by_killed_process"] = done_before
        figures["issued_after_restart"] = repeated.json()["issued"]
        assert written <= done_before < SIZE, "the killed process had not finished issuing"
        assert done_before + repeated.json()["issued"] == SIZE
        assert again.json()["issued"] == 0
        assert again.json()["already_invited"] == SIZE

        docs = await db[INVITATIONS].find({"event_id": event_id}, {"member_id": 1, "seq": 1}).to_list(None)
        members = Counter(d["member_id"] for d in docs)
        figures["invitation_documents"] = len(docs)
        assert len(docs) == SIZE
        assert len(members) == SIZE
        assert set(members) == {f"m{i:06d}" for i in range(SIZE)}

        # Let the relay publish; the whole 30,000 records (issued, invitation, reminder per
        # invitation) take minutes on FerretDB, so past PUBLISH_WAIT the rest is read from the
        # outboxes instead, with the second process killed so nothing moves while we look.
        publish_started = time.monotonic()
        while (
            await db[INVITATIONS].count_documents({PENDING: True}) and time.monotonic() - publish_started < PUBLISH_WAIT
        ):
            await asyncio.sleep(1)
        second.kill()
        figures["seconds_publishing"] = round(time.monotonic() - publish_started, 1)
        # kind -> invitation -> CloudEvent ids, on the topics and still in the outboxes
        on_topic: dict[str, dict[str, list[str]]] = {kind: defaultdict(list) for kind in RECORDS}
        for window in windows:
            for e in await window.read():
                kind = _kind(e)
                if kind == "issued" and e["data"]["event_id"] == event_id:
                    on_topic[kind][e["data"]["invitation_id"]].append(e["id"])
                elif kind and e["data"]["municipality"] == ags:
                    on_topic[kind][e["id"].rsplit(":", 1)[0]].append(e["id"])  # ids are <invitation>:<kind>
        pending: dict[str, dict[str, list[str]]] = {kind: defaultdict(list) for kind in RECORDS}
        sample: dict[str, Any] = {}
        async for doc in db[INVITATIONS].find({"event_id": event_id, PENDING: True}, {OUTBOX: 1}):
            for entry in doc.get(OUTBOX) or []:
                event = json.loads(entry["value"])
                kind = _kind(event)
                assert kind is not None, event["type"]
                pending[kind][doc["_id"]].append(entry["id"])
                sample = event["data"] if kind == "invitation" else sample
        figures["invitations_with_records_on_topics"] = len(on_topic["issued"])
        figures["records_on_topics"] = sum(len(ids) for by_inv in on_topic.values() for ids in by_inv.values())
        figures["invitations_still_in_outboxes"] = len(pending["issued"].keys() - on_topic["issued"].keys())
        figures["seconds_total"] = round(time.monotonic() - started, 1)
        print("kill-midway issuing:", figures)
        everyone = {f"{event_id}:m{i:06d}" for i in range(SIZE)}
        for kind in RECORDS:
            published, waiting = on_topic[kind], pending[kind]
            # Nothing lost: each invitation's record is on its topic or still waiting in its outbox.
            assert published.keys() | waiting.keys() == everyone, kind
            # Once: the only id such a record ever has is `<invitation>:<kind>`, never twice on the
            # topic (the first process's relay was idle, see above) nor twice in an outbox.
            for inv, ids in (published | waiting).items():
                assert set(ids) == {f"{inv}:{kind}"}, (kind, inv, ids)
            assert all(len(ids) == 1 for ids in published.values()), kind
            assert all(len(ids) == 1 for ids in waiting.values()), kind
        if sample:
            assert sample["params"]["event_title"] == "Tag des Ehrenamts"
            assert sample["params"]["rsvp_url"].startswith("https://rsvp.example.org/rsvp/")
    finally:
        first.kill()
        if second is not None:
            second.kill()
        await client.drop_database(database)
        await client.close()

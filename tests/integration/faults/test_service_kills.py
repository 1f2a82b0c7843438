"""SIGKILL of each service under load, on the real stack, with the services run as processes as ``make up`` runs them.

Each test starts one service as a uvicorn process with a database and consumer group of its own,
puts a stream of work on it, SIGKILLs it while the stream is still flowing, starts it again and
ends with a count: every unit of work applied, nothing applied twice; for notifications, at most
one resend, and only of a message that was in flight (claimed, ``sending``) when the process died.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from engagiert.notifications.config import NotificationsSettings
from engagiert.shared import topics
from engagiert.shared.contracts import (
    Consent,
    Contact,
    HoursRecorded,
    HoursTotals,
    MemberRegistered,
    MemberSnapshot,
    NotificationRequested,
    ReportHours,
)
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import (
    ServiceProcess,
    StackEndpoints,
    auth_header,
    eventually,
    only_test_systems,
    produce_records,
    skip_history,
)
from engagiert.shared.testing.probes import Mailpit, cloudevent, drop_databases, end_offsets, records_since

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _ags() -> str:
    """Return a municipality key no other test uses (8 digits, outside the real range)."""
    return f"99{random.randrange(10**6):06d}"


@pytest.fixture
def service(stack: StackEndpoints) -> Iterator[Callable[..., ServiceProcess]]:
    """Return a maker of a service process on the stack (``name``, settings as ``<SERVICE>_*`` variables)."""
    started: list[ServiceProcess] = []

    def make(name: str, **settings: str) -> ServiceProcess:
        env = {**stack.env(), "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}
        env.update({f"{name.upper()}_{key.upper()}": value for key, value in settings.items()})
        proc = ServiceProcess(f"engagiert.{name}.main", env=env)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture
async def scratch_dbs(stack: StackEndpoints) -> AsyncIterator[list[str]]:
    """Collect database names to drop after the test."""
    names: list[str] = []
    yield names
    await drop_databases(stack.mongodb_url, names)


class Stream:
    """Produces records in chunks at a steady pace in the background: the load during the kill."""

    def __init__(
        self, bootstrap: str, records: Sequence[OutgoingRecord], *, chunk: int, pause: float, topic: str | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.records = records
        self.chunk = chunk
        self.pause = pause
        self.produced = 0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        for start in range(0, len(self.records), self.chunk):
            part = list(self.records[start : start + self.chunk])
            await produce_records(self.bootstrap, part, topic=self.topic)
            self.produced += len(part)
            await asyncio.sleep(self.pause)

    def start(self) -> Stream:
        """Start producing."""
        self.task = asyncio.create_task(self._run())
        return self

    @property
    def running(self) -> bool:
        """Return True while records are still to be produced."""
        return self.task is not None and not self.task.done()

    async def finish(self) -> None:
        """Wait until every record is produced (raises what the producer raised)."""
        assert self.task is not None
        await self.task


def _kill_and_restart(proc: ServiceProcess) -> None:
    """SIGKILL the service (nothing flushed, nothing committed), then start it again on the same port."""
    proc.kill()
    proc.start(wait_ready=120)


async def test_registry_killed_while_applying_inbound_commands_applies_each_once_and_publishes_each(
    stack: StackEndpoints, service: Callable[..., ServiceProcess], kafka_topic: Any, unique: Any, scratch_dbs: list[str]
) -> None:
    """3,000 hours reports stream in on the inbound topic; SIGKILL midway; 3,000 entries, each fact published."""
    total, members = 3000, 30
    ags, db_name = _ags(), unique("fault_registry").replace("-", "_")
    scratch_dbs.append(db_name)
    inbound = await kafka_topic("test.kill.registry-inbound")
    confirmations = await kafka_topic("test.kill.registry-confirmations")
    engagement_from = await end_offsets(stack.kafka_bootstrap_servers, topics.REGISTRY_ENGAGEMENT)
    proc = service(
        "registry", mongodb_database=db_name, consumer_group=unique("kill-registry"), inbound_topic=inbound,
        confirmations_topic=confirmations, systems_pattern=only_test_systems(unique("s")), consumer_max_records="100",
    ).start(wait_ready=120)  # fmt: skip
    staff = auth_header([ags], "staff")
    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
        created = await http.post(
            "/v1/municipalities", headers=auth_header(["*"], "network-admin"),
            json={"ags": ags, "name": "Fehlerstadt", "kind": "Stadt"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        ids = []
        for i in range(members):
            body = {"given_name": f"Kill{i}", "family_name": "Probe", "contact": {"email": f"kill{i}@example.org"}}
            resp = await http.post(f"/v1/municipalities/{ags}/members", headers=staff, json=body)
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["member_id"])
    records = [
        make_record(
            ReportHours(municipality=ags, member_id=ids[i % members], hours=1 + i % 3,
                        date_from=date(2026, 1, 1) + timedelta(days=i % 300)),
            source="urn:fault-test",
        )
        for i in range(total)
    ]  # fmt: skip
    client = create_client(stack.mongodb_url)
    hours = client[db_name]["hours"]
    try:
        # 30 chunks at least 1 s apart: the kill lands while commands still stream in also on a loaded
        # machine (at 0.25 s the 3,000 were all produced before 600 applied, twice at load 15 on 2 cores).
        stream = Stream(stack.kafka_bootstrap_servers, records, chunk=100, pause=1.0, topic=inbound).start()
        await eventually(lambda: _at_least(hours, 600), timeout=120, what="600 entries before the kill")
        assert stream.running, "the kill must land while commands are still streaming in"
        _kill_and_restart(proc)
        await stream.finish()
        await eventually(lambda: _at_least(hours, total), timeout=180, what="every command after the restart")
        await asyncio.sleep(2.0)  # anything applied twice would show up now
        assert await hours.count_documents({}) == total, "every command applied, none twice"
        expected = sum(1 + i % 3 for i in range(total))
        got = [d["hours"] async for d in hours.find({}, {"hours": 1})]
        assert sum(got) == expected
    finally:
        await client.close()
    facts = await records_since(
        stack.kafka_bootstrap_servers, topics.REGISTRY_ENGAGEMENT, engagement_from,
        lambda recs: len(_facts_of(recs, ags)) >= total, timeout=120,
    )  # fmt: skip
    published = _facts_of(facts, ags)
    # At least once: a fact the relay published but could not clear before the kill may go out again
    # with the same CloudEvent id (consumers apply by id); what counts is that none is missing.
    assert len(set(published)) == total, "every entry's HoursRecorded fact published"


def _facts_of(records: Sequence[Any], ags: str) -> list[str]:
    """Return the CloudEvent ids of the HoursRecorded facts of ``ags`` among ``records``."""
    ids = []
    for rec in records:
        event = cloudevent(rec)
        if event.get("type") == HoursRecorded.TYPE and (event.get("data") or {}).get("municipality") == ags:
            ids.append(event["id"])
    return ids


async def _at_least(collection: Any, n: int) -> bool:
    return bool(await collection.count_documents({}) >= n)


def _snapshot(member_id: str, ags: str, *, email: str | None = None) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=member_id, municipality=ags, revision=1, given_name="Erika", family_name="Musterfrau",
        contact=Contact(email=email), consent=Consent(channels=["email"]),
    )  # fmt: skip


async def test_events_killed_while_applying_member_facts_keeps_each_entry_once(
    stack: StackEndpoints, service: Callable[..., ServiceProcess], unique: Any, scratch_dbs: list[str]
) -> None:
    """200 member snapshots and 3,000 hours facts stream in on the registry's topics; SIGKILL midway; each once."""
    members, per_member = 200, 15
    ags, db_name, group = _ags(), unique("fault_events").replace("-", "_"), unique("kill-events")
    scratch_dbs.append(db_name)
    # The events service reads the contract topics (no setting): start its group where they end now.
    await skip_history(stack.kafka_bootstrap_servers, group, [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT])
    proc = service("events", mongodb_database=db_name, consumer_group=group, consumer_max_records="100").start(
        wait_ready=120
    )
    ids = [f"kill-{uuid.uuid4().hex[:12]}" for _ in range(members)]
    snapshots = [make_record(MemberRegistered(member=_snapshot(m, ags)), source="/fault-test") for m in ids]
    first_day = datetime.now(UTC).date() - timedelta(days=60)  # within the 12 months the read model sums
    facts = [
        make_record(
            HoursRecorded(entry_id=f"{m}-h{k}", member_id=m, municipality=ags, hours=1 + k % 4,
                          date_from=first_day + timedelta(days=k), reported_by="fault-test",
                          totals=HoursTotals()),
            source="/fault-test",
        )
        for k in range(per_member)
        for m in ids
    ]  # fmt: skip
    client = create_client(stack.mongodb_url)
    read_model = client[db_name]["members"]
    applied = client[db_name]["hours_applied"]  # one record per entry applied, written after the member's sums

    async def entries() -> int:  # the shared topics carry other tests' facts too: count ours
        return int(await applied.count_documents({"member_id": {"$in": ids}}))

    try:
        await produce_records(stack.kafka_bootstrap_servers, snapshots)
        stream = Stream(stack.kafka_bootstrap_servers, facts, chunk=100, pause=0.3).start()
        await eventually(lambda: _entries_at_least(entries, 600), timeout=120, what="600 entries before the kill")
        assert stream.running, "the kill must land while facts are still streaming in"
        _kill_and_restart(proc)
        await stream.finish()
        total = members * per_member
        await eventually(lambda: _entries_at_least(entries, total), timeout=180, what="every fact after the restart")
        await asyncio.sleep(2.0)
        docs = [d async for d in read_model.find({"municipality": ags})]
        records = [r async for r in applied.find({"member_id": {"$in": ids}})]
    finally:
        await client.close()
    assert sorted(d["_id"] for d in docs) == sorted(ids), "every member in the read model"
    assert all(d.get("revision") == 1 and d.get("given_name") == "Erika" for d in docs), "every snapshot applied"
    assert sorted(r["_id"] for r in records) == sorted(f"{m}-h{k}" for m in ids for k in range(per_member))
    for doc in docs:
        # Each entry is on its own day: a day's sum is that entry's hours when it was counted once.
        expected = {(first_day + timedelta(days=k)).isoformat(): 1 + k % 4 for k in range(per_member)}
        assert doc["hours_by_day"] == expected, "each entry counted once"


async def _entries_at_least(entries: Callable[[], Awaitable[int]], n: int) -> bool:
    return await entries() >= n


async def test_notifications_killed_while_sending_delivers_every_mail_and_resends_only_in_flight_ones(
    stack: StackEndpoints, service: Callable[..., ServiceProcess], kafka_topic: Any, unique: Any,
    scratch_dbs: list[str],
) -> None:  # fmt: skip
    """500 requests into Mailpit; SIGKILL while sending; every member gets the mail, a resend only if it was in flight."""
    total, lease = 500, 10.0
    ags, run = _ags(), uuid.uuid4().hex[:10]
    db_name = unique("fault_notif").replace("-", "_")
    scratch_dbs.append(db_name)
    members_topic = await kafka_topic("test.kill.notif-members")
    requests_topic = await kafka_topic("test.kill.notif-requests")
    proc = service(
        "notifications", mongodb_database=db_name, consumer_group=unique("kill-notif"), members_topic=members_topic,
        requests_topic=requests_topic, lease_seconds=str(lease), sender_poll_seconds="0.2",
        retry_base_seconds="0.5", retry_max_seconds="2",
        # 500 mails take ~10 s at this rate, so the kill lands while they are being sent.
        smtp_rate_per_second="50",
    ).start(wait_ready=120)  # fmt: skip
    ids = [f"kn-{run}-{i}" for i in range(total)]
    address = {m: f"{m}@kill.example.org" for m in ids}
    subject = f"kill-{run}"
    snapshots = [make_record(MemberRegistered(member=_snapshot(m, ags, email=address[m])), source="/t") for m in ids]
    requests = [
        make_record(
            NotificationRequested(municipality=ags, member_id=m, template="generic",
                                  params={"subject": subject, "body": "Hallo"}),
            source="/fault-test",
        )
        for m in ids
    ]  # fmt: skip
    client = create_client(stack.mongodb_url)
    db = client[db_name]
    mailpit = Mailpit(stack.mailpit_api_url)
    try:
        await produce_records(stack.kafka_bootstrap_servers, snapshots, topic=members_topic)
        await eventually(lambda: _count_at_least(db["contacts"], {}, total), timeout=120, what="every contact")
        await produce_records(stack.kafka_bootstrap_servers, requests, topic=requests_topic)
        # The mail server's side is what counts: the log marks a whole batch `sent` at once.
        await eventually(lambda: _mails_at_least(mailpit, subject, 100), timeout=120,
                    what="100 mails accepted by the mail server before the kill")  # fmt: skip
        proc.kill()
        in_flight = {d["_id"] async for d in db["deliveries"].find({"status": "sending"}, {"_id": 1})}
        sent_at_kill = await db["deliveries"].count_documents({"status": "sent"})
        assert sent_at_kill < total, "the kill must land while mails are still being sent"
        assert in_flight, "the kill must land while some mails are claimed (in flight)"
        print(f"killed with {sent_at_kill} sent, {len(in_flight)} in flight")
        proc.start(wait_ready=120)
        await eventually(lambda: _count_at_least(db["deliveries"], {"status": "sent"}, total), timeout=240,
                    what="every delivery sent after the restart")  # fmt: skip
        await eventually(lambda: _mails_at_least(mailpit, subject, total), timeout=60, what="every mail in Mailpit")
        await asyncio.sleep(lease + 2.0)  # leases of anything still claimed would have run out by now
        statuses = Counter([d["status"] async for d in db["deliveries"].find({}, {"status": 1})])
    finally:
        await client.close()
    assert statuses == {"sent": total}, statuses
    mails = await mailpit.messages(f'subject:"{subject}"')
    per_address = Counter(to["Address"] for m in mails for to in m["To"])
    assert set(per_address) == set(address.values()), "every member got the mail"
    resent = {m["MessageID"].split("@")[0] for m in mails if per_address[m["To"][0]["Address"]] > 1}
    assert max(per_address.values()) <= 2, "at most one resend per message"
    assert resent <= in_flight, f"only messages in flight at the kill are resent: {sorted(resent - in_flight)}"
    assert len(mails) - total == len(resent), (len(mails), total, len(resent))
    # The bound services/notifications/README.md states: fewer than 2 x (SENDER_CHUNK + SMTP_POOL_SIZE).
    defaults = NotificationsSettings.model_fields
    bound = 2 * (defaults["sender_chunk"].default + defaults["smtp_pool_size"].default)
    assert len(resent) < bound, (len(resent), bound)
    print(f"{len(mails)} mails for {total} deliveries: {len(resent)} resent of {len(in_flight)} in flight")


async def _count_at_least(collection: Any, query: dict[str, Any], n: int) -> bool:
    return bool(await collection.count_documents(query) >= n)


async def _mails_at_least(mailpit: Mailpit, subject: str, n: int) -> bool:
    return await mailpit.count(f'subject:"{subject}"') >= n

"""Proofs on the real stack (Kafka, FerretDB, Mailpit): delivery, replay, SMTP outage, consent, erasure, crash bound, SMTP codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from engagiert.notifications import domain
from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.mailer import SmtpMailer
from engagiert.notifications.main import build_mailer, create_app
from engagiert.notifications.services import Notifications
from engagiert.shared.contracts import (
    Consent,
    Contact,
    MemberErased,
    MemberRegistered,
    MemberSnapshot,
    NotificationCancelRequested,
    NotificationRequested,
)
from engagiert.shared.contracts.letters import HonourGrantedLetter, InvitationLetter, RsvpReminderLetter
from engagiert.shared.contracts.members import MunicipalityProfile, MunicipalityProfileChanged, PostalAddress
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.testing import (
    ServiceProcess,
    StackEndpoints,
    app_client,
    auth_header,
    consume_until,
    eventually,
    free_port,
    produce_records,
)
from engagiert.shared.testing.stack import REPO_ROOT

pytestmark = pytest.mark.integration

AGS = "05774032"
STAFF = auth_header([AGS], "staff")
HONOUR = HonourGrantedLetter.example().to_params()


def member_record(member_id: str, *, email: str | None, language: str = "de", channels: list[str] | None = None,
                  status: str = "active", revision: int = 1) -> OutgoingRecord:  # fmt: skip
    """Return a MemberRegistered record for a test member."""
    snapshot = MemberSnapshot(
        member_id=member_id,
        municipality=AGS,
        revision=revision,
        given_name="Erika",
        family_name="Mustermann",
        language=language,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        contact=Contact(email=email),
        consent=Consent(channels=["email"] if channels is None else channels),  # type: ignore[arg-type]
    )
    return make_record(MemberRegistered(member=snapshot), source="/tests")


def request_record(member_id: str, template: str = "invitation", **extra: Any) -> OutgoingRecord:
    """Return a NotificationRequested record."""
    default = InvitationLetter.example().to_params() | {"event_title": "Empfang zum Ehrenamtstag"}
    if template == "rsvp-reminder":
        default = RsvpReminderLetter.example().to_params() | {"event_title": "Empfang zum Ehrenamtstag"}
    params = extra.pop("params", default)
    return make_record(
        NotificationRequested(municipality=AGS, member_id=member_id, template=template, params=params, **extra),  # type: ignore[arg-type]
        source="/tests",
    )


class Harness:
    """One notifications app on throwaway topics and its own database, with Mailpit helpers."""

    def __init__(self, stack: StackEndpoints, client: httpx.AsyncClient, app: Any, members: str, requests: str) -> None:
        self.stack = stack
        self.client = client
        self.app = app
        self.members_topic = members
        self.requests_topic = requests

    @property
    def service(self) -> Notifications:
        return self.app.state.notifications  # type: ignore[no-any-return]

    @property
    def mailer(self) -> SmtpMailer:
        return self.app.state.mailer  # type: ignore[no-any-return]

    async def members(self, *records: OutgoingRecord) -> None:
        await produce_records(self.stack.kafka_bootstrap_servers, list(records), topic=self.members_topic)

    async def requests(self, *records: OutgoingRecord) -> None:
        await produce_records(self.stack.kafka_bootstrap_servers, list(records), topic=self.requests_topic)

    async def deliveries(self, **query: str) -> list[dict[str, Any]]:
        resp = await self.client.get(f"/v1/municipalities/{AGS}/deliveries", params=query, headers=STAFF)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def mails_to(self, address: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.stack.mailpit_api_url, timeout=10) as mp:
            resp = await mp.get("/api/v1/search", params={"query": f"to:{address}", "limit": 50})
            resp.raise_for_status()
            return resp.json()["messages"]  # type: ignore[no-any-return]

    async def mail(self, message_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.stack.mailpit_api_url, timeout=10) as mp:
            resp = await mp.get(f"/api/v1/message/{message_id}")
            resp.raise_for_status()
            return resp.json()  # type: ignore[no-any-return]


@pytest.fixture
def harness(stack: StackEndpoints, kafka_topic: Callable[..., Awaitable[str]], unique: Callable[[str], str],
            mongo_client: Any) -> Callable[..., Any]:  # fmt: skip
    """Return a maker of a running service (its lifespan) on throwaway topics and database."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Harness]:
        members = await kafka_topic("test.notif.members")
        requests = await kafka_topic("test.notif.requests")
        db = unique("notif").replace("-", "_")
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": stack.kafka_bootstrap_servers,
            "mongodb_url": stack.mongodb_url,
            "mongodb_database": db,
            "consumer_group": unique("g-notif"),
            "members_topic": members,
            "requests_topic": requests,
            "smtp_host": stack.smtp_host,
            "smtp_port": stack.smtp_port,
            "retry_base_seconds": 0.3,
            "retry_max_seconds": 1.0,
            "sender_poll_seconds": 0.2,
            "outbox_poll_seconds": 0.2,
            "unknown_member_grace_seconds": 30,
        }
        settings = NotificationsSettings(**{**values, **overrides})
        app = create_app(settings)
        try:
            async with app_client(app) as client:
                yield Harness(stack, client, app, members, requests)
        finally:
            await mongo_client.drop_database(db)

    return make


async def test_request_arrives_once_in_member_language_with_branding_and_replay_sends_nothing(harness: Any) -> None:
    """One request gives exactly one e-mail, in English with the branding; a replayed request sends nothing."""
    async with harness() as h:
        resp = await h.client.put(
            f"/v1/municipalities/{AGS}/branding",
            json={
                "name": "Stadt Paderborn",
                "signature": "Anlaufstelle Ehrenamt\nAm Abdinghof 11",
                "logo_url": "https://www.paderborn.de/logo.png",
            },
            headers=STAFF,
        )
        assert resp.status_code == 200, resp.text
        member_id = f"m-{uuid.uuid4().hex[:10]}"
        address = f"{member_id}@example.org"
        request = request_record(member_id)
        # The request may overtake the snapshot (two topics): the service holds it for the grace period.
        await h.requests(request)
        await h.members(member_record(member_id, email=address, language="en"))

        mails = await eventually(lambda: h.mails_to(address))
        assert len(mails) == 1
        assert mails[0]["Subject"] == "Invitation: Empfang zum Ehrenamtstag on 5 December 2026"
        full = await h.mail(mails[0]["ID"])
        assert "Stadt Paderborn" in full["HTML"]
        assert "https://www.paderborn.de/logo.png" in full["HTML"]
        assert "Dear Erika Mustermann" in full["Text"]
        assert "Am Abdinghof 11" in full["Text"]

        # The mail server may show the message a moment before the sender's chunk is journaled.
        await eventually(lambda: _status(h, request.id, "sent"))
        log = await h.deliveries(request_id=request.id)
        assert [(d["status"], d["attempts"]) for d in log] == [("sent", 1)]
        assert log[0]["answer"] == "250 2.0.0"  # the codes of the server's answer (never its text), from the journal
        assert full["MessageID"] == f"{log[0]['delivery_id']}@engagiert.local"
        sent_fact = f'"{log[0]["delivery_id"]}.sent"'.encode()  # the fact's CloudEvent id, relayed from the journal
        facts = await consume_until(
            h.stack.kafka_bootstrap_servers,
            "notifications.deliveries.v1",
            lambda recs: any(sent_fact in (r.value or b"") for r in recs),
            timeout=60,
        )
        assert any(sent_fact in (r.value or b"") for r in facts)

        # Replay the very same record, then a marker request for the same member (same partition):
        # once the marker is delivered, the replay has been consumed before it.
        await h.requests(request)
        marker = request_record(member_id, template="generic", params={"subject": "marker", "body": "x"})
        await h.requests(marker)
        await eventually(lambda: _has_subject(h, address, "marker"))
        mails = await h.mails_to(address)
        assert sorted(m["Subject"] for m in mails) == [
            "Invitation: Empfang zum Ehrenamtstag on 5 December 2026",
            "marker",
        ]
        assert len(await h.deliveries(member_id=member_id)) == 2

        # Another municipality's staff sees nothing of it.
        other = await h.client.get(f"/v1/municipalities/{AGS}/deliveries", headers=auth_header(["05711000"], "staff"))
        assert other.status_code == 404

        preview = await h.client.post(
            f"/v1/municipalities/{AGS}/templates/honour-granted/preview",
            json={"language": "de", "params": HONOUR | {"honour_kind": "local-award", "honour_title": "<Ehrenpreis>"}},
            headers=STAFF,
        )
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["subject"] == "Herzlichen Glückwunsch: Ihre Auszeichnung „<Ehrenpreis>“"
        assert "&lt;Ehrenpreis&gt;" in body["html"]
        assert "Stadt Paderborn" in body["html"]


async def _has_subject(h: Harness, address: str, subject: str) -> bool:
    return any(m["Subject"] == subject for m in await h.mails_to(address))


async def test_smtp_outage_is_retried_and_delivered_once_when_the_server_is_back(
    harness: Any, stack: StackEndpoints
) -> None:
    """With the SMTP server away, the delivery is retried with backoff and sent once it is back; nothing is lost."""
    async with harness(smtp_port=free_port(), max_attempts=50) as h:
        member_id = f"m-{uuid.uuid4().hex[:10]}"
        address = f"{member_id}@example.org"
        await h.members(member_record(member_id, email=address))
        request = request_record(member_id, template="rsvp-reminder")
        await h.requests(request)

        async def retried() -> bool:
            log = await h.deliveries(request_id=request.id)
            return bool(log) and log[0]["attempts"] >= 2 and log[0]["status"] == "queued"

        await eventually(retried)
        assert await h.mails_to(address) == []
        h.mailer.configure(host=stack.smtp_host, port=stack.smtp_port)  # the server is back

        mails = await eventually(lambda: h.mails_to(address))
        log = await eventually(lambda: _status(h, request.id, "sent"))
        assert log["attempts"] >= 3
        assert log["answer"]
        assert len(await h.mails_to(address)) == 1
        assert mails[0]["Subject"].startswith("Erinnerung")  # German: the member's language


async def _status(h: Harness, request_id: str, status: str) -> dict[str, Any] | None:
    log = await h.deliveries(request_id=request_id)
    return log[0] if log and log[0]["status"] == status else None


async def test_members_without_consent_left_or_unknown_get_nothing_and_the_log_says_why(harness: Any) -> None:
    """No consent, a member who left, no address, an unknown member: suppressed with the reason; a cancel withdraws."""
    async with harness(unknown_member_grace_seconds=1) as h:
        ids = {k: f"m-{k}-{uuid.uuid4().hex[:8]}" for k in ("noconsent", "left", "noaddr", "unknown", "sched")}
        await h.members(
            member_record(ids["noconsent"], email=f"{ids['noconsent']}@example.org", channels=[]),
            member_record(ids["left"], email=f"{ids['left']}@example.org", status="left"),
            member_record(ids["noaddr"], email=None),
            member_record(ids["sched"], email=f"{ids['sched']}@example.org"),
        )
        requests = {k: request_record(v) for k, v in ids.items() if k != "sched"}
        later = datetime.now(UTC) + timedelta(hours=1)
        scheduled = request_record(ids["sched"], template="rsvp-reminder", not_before=later, cancel_key="event-1")
        await h.requests(*requests.values(), scheduled)
        expected = {
            "noconsent": "no-consent",
            "left": "member-left",
            "noaddr": "no-address",
            "unknown": "unknown-member",
        }
        for key, reason in expected.items():
            log = await eventually(lambda k=key: _status(h, requests[k].id, "suppressed"))
            assert log["reason"] == reason
            assert log["attempts"] == 0
        assert await h.mails_to(f"{ids['noconsent']}@example.org") == []
        assert await h.mails_to(f"{ids['left']}@example.org") == []

        log = await h.deliveries(request_id=scheduled.id)
        assert log[0]["status"] == "queued"  # waits for its time, in the database
        cancel = make_record(
            NotificationCancelRequested(municipality=AGS, cancel_key="event-1", member_id=ids["sched"]), source="/tests"
        )
        await h.requests(cancel)
        await eventually(lambda: _status(h, scheduled.id, "cancelled"))


async def test_erasure_removes_address_and_content_and_is_confirmed(harness: Any, stack: StackEndpoints) -> None:
    """After member.erased the contact and the messages' content are gone, the log keeps counts, and it is confirmed."""
    async with harness() as h:
        member_id = f"m-{uuid.uuid4().hex[:10]}"
        address = f"{member_id}@example.org"
        await h.members(member_record(member_id, email=address))
        request = request_record(member_id, template="honour-granted", params=HONOUR)
        await h.requests(request)
        await eventually(lambda: _status(h, request.id, "sent"))
        db = h.service.repo
        delivery_id = domain.delivery_id_for(request.id)
        assert (await db.content(delivery_id) or {}).get("text")

        erased = make_record(
            MemberErased(member_id=member_id, municipality=AGS, erased_at=datetime.now(UTC)), source="/tests"
        )
        await h.members(erased)

        async def contact_erased() -> bool:
            doc = await db.contact(member_id)
            return bool(doc and doc.get("erased"))

        await eventually(contact_erased)
        contact = await db.contact(member_id)
        assert contact is not None
        assert "email" not in contact
        assert "given_name" not in contact
        delivery = await db.deliveries.find_one({"request_id": request.id})
        assert delivery is not None
        assert "content" not in delivery
        assert "params" not in delivery
        assert await db.content(delivery_id) is None
        assert await db.sends.count_documents({f"answers.{delivery_id}": {"$exists": True}}) == 0
        log = await h.deliveries(member_id=member_id)
        assert [d["status"] for d in log] == ["sent"]
        assert log[0]["content_erased"]

        # A replayed snapshot does not bring the address back.
        await h.members(member_record(member_id, email=address, revision=5))
        later = request_record(member_id)
        await h.requests(later)
        log_later = await eventually(lambda: _status(h, later.id, "suppressed"))
        assert log_later["reason"] == "member-erased"
        assert "email" not in (await db.contact(member_id) or {})

        confirm_id = f"notifications-erasure-{erased.id}"
        records = await consume_until(
            stack.kafka_bootstrap_servers,
            "registry.erasure-confirmations.v1",
            lambda recs: any(confirm_id.encode() in (r.value or b"") for r in recs),
            timeout=60,
        )
        assert any(confirm_id.encode() in (r.value or b"") for r in records)


async def test_two_senders_with_leases_shorter_than_a_batch_send_each_message_once(harness: Any) -> None:
    """A batch takes twice its lease (rate limit) while a second sender polls the same store: the claim is
    extended and no message is started late in its lease, so nothing is taken over while being sent and
    nothing goes out twice (without both guards this test fails)."""
    total = 40
    async with harness(lease_seconds=2.0, smtp_rate_per_second=10, smtp_pool_size=2, sender_chunk=4) as h:
        settings = h.service.settings
        other = Notifications.build(repo=h.service.repo, settings=settings, mailer=build_mailer(settings))
        second = asyncio.create_task(other.sender.run_sender())
        try:
            run = uuid.uuid4().hex[:8]
            ids = [f"m-lease-{run}-{i}" for i in range(total)]
            await h.members(*(member_record(m, email=f"{m}@example.org") for m in ids))
            await eventually(lambda: _count(h.service.repo.contacts, total))
            await h.requests(
                *(request_record(m, template="generic", params={"subject": run, "body": "x"}) for m in ids)
            )
            await eventually(lambda: _count(h.service.repo.deliveries, total, status="sent"), timeout=90)
            await asyncio.sleep(2.5)  # every lease has run out: a claim taken over would be sent again now
        finally:
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second
        mails = await _mails_with_subject(h.stack, run)
        copies = Counter(to["Address"] for m in mails for to in m["To"])
        assert copies == dict.fromkeys((f"{m}@example.org" for m in ids), 1)
        log = [(d["status"], d["attempts"]) async for d in h.service.repo.deliveries.find({})]
        assert log == [("sent", 1)] * total


async def test_a_sigkill_between_smtp_acceptance_and_the_log_update_resends_at_most_once(
    stack: StackEndpoints, kafka_topic: Callable[..., Awaitable[str]], unique: Callable[[str], str], mongo_client: Any
) -> None:
    """A real process killed right after the server accepted its 5th message: after a restart every request is
    delivered, only the accepted-but-unjournaled ones once more (same Message-ID), and the log ends ``sent``."""
    kill_after, total, chunk = 5, 6, 1
    db_name = unique("notif_kill").replace("-", "_")
    members_topic = await kafka_topic("test.notif.kill-members")
    requests_topic = await kafka_topic("test.notif.kill-requests")
    env = {
        **stack.env(),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "NOTIFICATIONS_MONGODB_DATABASE": db_name,
        "NOTIFICATIONS_CONSUMER_GROUP": unique("g-notif-kill"),
        "NOTIFICATIONS_MEMBERS_TOPIC": members_topic,
        "NOTIFICATIONS_REQUESTS_TOPIC": requests_topic,
        "NOTIFICATIONS_LEASE_SECONDS": "2",
        "NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2",
        "NOTIFICATIONS_SMTP_POOL_SIZE": "1",  # one message at a time, each journaled on its own
        "NOTIFICATIONS_SENDER_CHUNK": str(chunk),
    }
    run = uuid.uuid4().hex[:8]
    ids = [f"m-kill-{run}-{i}" for i in range(total)]
    address = {m: f"{m}@example.org" for m in ids}
    requests = {m: request_record(m, template="generic", params={"subject": f"kill {run}", "body": "x"}) for m in ids}
    db = mongo_client[db_name]
    doomed = ServiceProcess(
        "engagiert.notifications.main", env={**env, "NOTIFICATIONS_FAULT_SIGKILL_AFTER_ACCEPTED": str(kill_after)}
    )
    restarted = ServiceProcess("engagiert.notifications.main", env=env)
    try:
        await asyncio.to_thread(doomed.start, wait_ready=90)
        await produce_records(
            stack.kafka_bootstrap_servers,
            [member_record(m, email=address[m]) for m in ids],
            topic=members_topic,
        )
        await eventually(lambda: _count(db["contacts"], total))
        await produce_records(stack.kafka_bootstrap_servers, list(requests.values()), topic=requests_topic)

        assert doomed.proc is not None
        await eventually(lambda: _exited(doomed), timeout=60)
        assert doomed.proc.returncode == -signal.SIGKILL, doomed.log_tail()
        in_flight = {d["_id"] async for d in db["deliveries"].find({"status": "sending"}, {"_id": 1})}

        await asyncio.to_thread(restarted.start, wait_ready=90)
        await eventually(lambda: _count(db["deliveries"], total, status="sent"), timeout=60)
        await eventually(lambda: _at_least(_mails_with_subject(stack, f"kill {run}"), total))
        await asyncio.sleep(3.0)  # the leases (2 s) of anything still claimed have run out: nothing more comes
        found = await _mails_with_subject(stack, f"kill {run}")
        mails = {m: [f for f in found if f["To"][0]["Address"] == address[m]] for m in ids}
        log = [(d["status"], d["attempts"]) async for d in db["deliveries"].find({})]
    finally:
        doomed.kill()
        restarted.stop()
        await mongo_client.drop_database(db_name)

    copies = {m: len(found) for m, found in mails.items()}
    assert all(1 <= n <= 2 for n in copies.values()), copies  # every request delivered, at most one resend
    resent = {domain.delivery_id_for(requests[m].id) for m, n in copies.items() if n == 2}
    # The killed one once more, and at most the one before it (with one connection and chunks of one: its
    # journal write may have been under way). The earlier accepted ones were journaled: the restarted sender
    # logs them as sent without sending them again (without the journal all five would come twice).
    assert 1 <= len(resent) <= 2 * chunk < kill_after, copies
    assert resent <= in_flight  # only messages the log still had as being sent at the kill
    assert log == [("sent", 1)] * total
    for m, found in mails.items():
        assert {f["MessageID"] for f in found} == {f"{domain.delivery_id_for(requests[m].id)}@engagiert.local"}


async def _count(collection: Any, n: int, **query: Any) -> bool:
    return bool(await collection.count_documents(query) >= n)


async def _exited(proc: ServiceProcess) -> bool:
    return proc.proc is not None and proc.proc.poll() is not None


async def _mails_with_subject(stack: StackEndpoints, subject: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.mailpit_api_url, timeout=10) as mp:
        resp = await mp.get("/api/v1/search", params={"query": f'subject:"{subject}"', "limit": 500})
        resp.raise_for_status()
        return resp.json()["messages"]  # type: ignore[no-any-return]


async def _at_least(found: Awaitable[list[Any]], n: int) -> bool:
    return len(await found) >= n


async def _status_of(h: Harness, request_id: str) -> str | None:
    log = await h.deliveries(request_id=request_id)
    return log[0]["status"] if log else None


async def test_a_batch_claimed_before_an_erasure_sends_nothing_to_the_erased_member(harness: Any) -> None:
    """The erased member's message, claimed with a slow batch before the erasure, is suppressed: Mailpit gets none."""
    # Two messages a second, one connection, chunks of two: the batch of 31 takes about fifteen seconds.
    async with harness(smtp_rate_per_second=2, smtp_pool_size=1, sender_chunk=2) as h:
        run = uuid.uuid4().hex[:8]
        filler, victim = f"m-fill-{run}", f"m-gone-{run}"
        await h.members(
            member_record(filler, email=f"{filler}@example.org"), member_record(victim, email=f"{victim}@example.org")
        )
        repo = h.service.repo
        await eventually(lambda: _both_known(repo, filler, victim))
        at = datetime.now(UTC) + timedelta(seconds=10)  # one due time: one batch, the victim's message last
        params = {"subject": f"batch {run}", "body": "x"}
        fill = [request_record(filler, template="generic", params=params, not_before=at) for _ in range(30)]
        last = request_record(victim, template="generic", params=params, not_before=at + timedelta(milliseconds=1))
        await h.requests(*fill, last)
        await eventually(lambda: _count(repo.deliveries, 31))
        assert datetime.now(UTC) < at, "all queued before they are due: they are claimed as one batch"

        await eventually(lambda: _is(h, last.id, "sending"), what="the victim's message claimed")
        claims = {d["claim"] async for d in repo.deliveries.find({"status": "sending"}, {"claim": 1})}
        assert len(claims) == 1, "the victim's message was claimed with the others, as the last of one batch"
        await h.members(
            make_record(MemberErased(member_id=victim, municipality=AGS, erased_at=datetime.now(UTC)), source="/t")
        )
        await eventually(lambda: _erasing(repo, victim), what="the erasure applied")
        assert await h.mails_to(f"{victim}@example.org") == [], "the erasure came before the victim's chunk"

        final = await eventually(lambda: _settled(h, last.id), timeout=120)
        assert (final["status"], final["reason"]) == ("suppressed", "member-erased")
        assert len(await eventually(lambda: _mails_at_least(h, f"{filler}@example.org", 30), timeout=60)) == 30
        assert await h.mails_to(f"{victim}@example.org") == []
        assert await repo.contents.count_documents({"member_id": victim}) == 0


async def _both_known(repo: Any, *member_ids: str) -> bool:
    return len(await repo.contacts_by_id(list(member_ids))) == len(member_ids)


async def _is(h: Harness, request_id: str, status: str) -> bool:
    return await _status_of(h, request_id) == status


async def _erasing(repo: Any, member_id: str) -> bool:
    return bool(await repo.erasing([member_id]))


async def _settled(h: Harness, request_id: str) -> dict[str, Any] | None:
    log = await h.deliveries(request_id=request_id)
    return log[0] if log and log[0]["status"] not in ("queued", "sending") else None


async def _mails_at_least(h: Harness, address: str, n: int) -> list[dict[str, Any]] | None:
    mails = await h.mails_to(address)
    return mails if len(mails) >= n else None


def _mailpit_binary() -> str | None:
    """Return the Mailpit the local stack built (``$STACK_DIR/bin``), or one on the PATH."""
    built = Path(os.environ.get("STACK_DIR") or REPO_ROOT / ".stack") / "bin" / "mailpit"
    return str(built) if built.exists() else shutil.which("mailpit")


@pytest.fixture
def refusing_mailpit() -> Iterator[int]:
    """Run a Mailpit of this test's own that refuses every recipient not starting with 'allowed'; yield its SMTP port."""
    binary = _mailpit_binary()
    if binary is None:
        pytest.skip("no mailpit binary: set STACK_DIR to the local stack's folder (deploy/local/stack.sh builds it)")
    smtp, http = free_port(), free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--smtp",
            f"127.0.0.1:{smtp}",
            "--listen",
            f"127.0.0.1:{http}",
            "--smtp-allowed-recipients",
            "^allowed",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{http}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail("the test's mailpit did not start")
            time.sleep(0.1)
        yield smtp
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_an_smtp_failure_keeps_and_publishes_only_the_reply_and_enhanced_status_codes(
    harness: Any, refusing_mailpit: int, stack: StackEndpoints
) -> None:
    """A refused recipient fails with '550 5.1.0' in the log and the fact, never the server's text or the address."""
    async with harness(smtp_port=refusing_mailpit) as h:
        member_id = f"m-{uuid.uuid4().hex[:10]}"
        address = f"refused.{member_id}@example.org"
        await h.members(member_record(member_id, email=address))
        request = request_record(member_id, template="generic", params={"subject": "x", "body": "y"})
        await h.requests(request)

        failed = await eventually(lambda: _settled(h, request.id))
        assert failed["status"] == "failed"
        assert failed["answer"] == "550 5.1.0", "the codes only: the text may name the recipient"
        delivery_id = domain.delivery_id_for(request.id)
        doc = await h.service.repo.deliveries.find_one({"_id": delivery_id})
        assert doc is not None
        assert doc["answer"] == "550 5.1.0"
        fact_id = f'"{delivery_id}.failed"'.encode()
        facts = await consume_until(
            stack.kafka_bootstrap_servers,
            "notifications.deliveries.v1",
            lambda recs: any(fact_id in (r.value or b"") for r in recs),
            timeout=60,
        )
        [fact] = [r for r in facts if fact_id in (r.value or b"")]
        assert json.loads(fact.value)["data"]["reason"] == "550 5.1.0"
        assert b"mailbox unavailable" not in fact.value
        assert address.encode() not in fact.value


async def test_the_registry_profile_signs_the_invitation_with_reply_to_and_a_calendar_entry(harness: Any) -> None:
    """The municipality's profile names the sender and the Reply-To; the invitation carries a text/calendar part at 17:00."""
    async with harness() as h:
        profile = MunicipalityProfile(
            ags=AGS,
            revision=1,
            name="Stadt Paderborn",
            kind="Stadt",
            contact_point_name="Anlaufstelle für ehrenamtliches Engagement",
            contact_point_email="ehrenamt@paderborn.example",
            contact_point_phone="05251 88-11000",
            postal_address=PostalAddress(street="Am Abdinghof 11", postal_code="33098", city="Paderborn"),
        )
        member_id = f"m-{uuid.uuid4().hex[:10]}"
        address = f"{member_id}@example.org"
        await h.members(
            make_record(MunicipalityProfileChanged(municipality=AGS, profile=profile), source="/tests"),
            member_record(member_id, email=address),
        )
        await eventually(lambda: _branded(h))
        await h.requests(request_record(member_id))
        mails = await eventually(lambda: h.mails_to(address))
        full = await h.mail(mails[0]["ID"])
        assert full["From"]["Name"] == "Stadt Paderborn – Anlaufstelle für ehrenamtliches Engagement"
        assert full["ReplyTo"][0]["Address"] == "ehrenamt@paderborn.example"
        assert "5. Dezember 2026, 17:00 bis 20:00 Uhr" in full["Text"]
        assert "Am Abdinghof 11" in full["Text"]
        calendars = [a for a in full["Attachments"] if a["ContentType"].startswith("text/calendar")]
        assert len(calendars) == 1, full["Attachments"]
        async with httpx.AsyncClient(base_url=h.stack.mailpit_api_url, timeout=10) as mp:
            ics = (await mp.get(f"/api/v1/message/{mails[0]['ID']}/part/{calendars[0]['PartID']}")).content
        assert b"DTSTART;TZID=Europe/Berlin:20261205T170000" in ics

        # Staff's setting wins over the profile.
        resp = await h.client.put(f"/v1/municipalities/{AGS}/branding", json={"colour": "#7a1f1f"}, headers=STAFF)
        assert resp.status_code == 200, resp.text
        assert resp.json()["colour"] == "#7a1f1f"
        assert resp.json()["contact_name"] == "Anlaufstelle für ehrenamtliches Engagement"


async def _branded(h: Harness) -> bool:
    resp = await h.client.get(f"/v1/municipalities/{AGS}/branding", headers=STAFF)
    return resp.status_code == 200 and resp.json().get("email") == "ehrenamt@paderborn.example"


async def test_previews_of_the_printed_letter_and_the_certificates_are_pdfs(harness: Any) -> None:
    """Staff preview every template as a printed letter and both certificates as PDF; other tenants get none."""
    import io

    from pypdf import PdfReader

    async with harness() as h:
        letter = await h.client.post(
            f"/v1/municipalities/{AGS}/templates/invitation/letter.pdf", json={"language": "de"}, headers=STAFF
        )
        assert letter.status_code == 200, letter.text
        assert letter.headers["content-type"] == "application/pdf"
        text = PdfReader(io.BytesIO(letter.content)).pages[0].extract_text()
        assert "Einladung: Empfang zum Tag des Ehrenamts" in text
        assert "Musterstraße 1" in text
        for kind, heading in (("engagementnachweis", "Engagementnachweis NRW"), ("urkunde", "Urkunde")):
            resp = await h.client.post(
                f"/v1/municipalities/{AGS}/certificates/{kind}.pdf", json={"holder": "Jürgen Groß"}, headers=STAFF
            )
            assert resp.status_code == 200, resp.text
            page = PdfReader(io.BytesIO(resp.content)).pages[0].extract_text()
            assert heading in page
            assert "Jürgen Groß" in page
        other = await h.client.post(
            f"/v1/municipalities/{AGS}/certificates/urkunde.pdf", json={}, headers=auth_header(["05711000"], "staff")
        )
        assert other.status_code in (403, 404)


async def test_a_member_reached_only_by_post_gets_a_letter_in_the_runs_pdf(harness: Any) -> None:
    """No e-mail address but consent to post: the log says ``letter`` and the run's PDF has the name and address."""
    import io

    from pypdf import PdfReader

    async with harness() as h:
        member_id = f"m-{uuid.uuid4().hex[:10]}"
        snapshot = MemberSnapshot(
            member_id=member_id,
            municipality=AGS,
            revision=1,
            given_name="Jürgen",
            family_name="Groß-Schönebeck",
            contact=Contact(
                postal_address=PostalAddress(street="Kötterhagen 17", postal_code="33098", city="Paderborn")
            ),
            consent=Consent(channels=["post"]),
        )
        await h.members(make_record(MemberRegistered(member=snapshot), source="/tests"))
        request = request_record(member_id)
        await h.requests(request)
        delivery = await eventually(lambda: _status(h, request.id, "letter"))
        assert delivery["channel"] == "post"
        runs = (await h.client.get(f"/v1/municipalities/{AGS}/letters", headers=STAFF)).json()
        run = next(r["run"] for r in runs if r["letters"] >= 1)
        pdf = await h.client.get(f"/v1/municipalities/{AGS}/letters/{run}.pdf", headers=STAFF)
        assert pdf.status_code == 200, pdf.text
        text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
        assert "Jürgen Groß-Schönebeck" in text
        assert "Kötterhagen 17" in text
        assert "33098 Paderborn" in text
        assert "Einladung: Empfang zum Ehrenamtstag" in text
        assert (await h.client.get(f"/v1/municipalities/{AGS}/letters/nope.pdf", headers=STAFF)).status_code == 404

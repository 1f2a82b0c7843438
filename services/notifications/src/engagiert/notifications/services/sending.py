"""Sending: claim due deliveries, check consent, render and send them over SMTP, journal what was accepted."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.utils import formataddr, parseaddr
from typing import Any, Literal

from engagiert.notifications import domain
from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.domain import utcnow
from engagiert.notifications.mailer import PermanentSmtpError, SmtpMailer, TransientSmtpError, compose
from engagiert.notifications.rendering import Renderer
from engagiert.notifications.repository import Doc, Repository
from engagiert.notifications.services.branding import Branding
from engagiert.notifications.services.unsubscribe import Unsubscribe
from engagiert.shared.contracts import DeliveryFailed, DeliverySent, DeliverySuppressed
from engagiert.shared.contracts.letters import is_transactional
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.logging import get_logger

log = get_logger(__name__)

_CLAIM: Doc = {"lease_until": "", "claim": ""}
"""The fields of a claim, unset when a delivery leaves ``sending``."""


@dataclass(frozen=True)
class _Outcome:
    """What became of one claimed delivery: ``sent`` (accepted), ``update`` (log it so) or ``skip`` (release)."""

    kind: Literal["sent", "update", "skip"]
    answer: str = ""
    update: Doc | None = None
    records: Sequence[OutgoingRecord] = ()
    content: Doc | None = None


@dataclass
class _Batch:
    """Deliveries claimed together (``claim`` = ``token``) and their members' contacts."""

    token: str
    docs: list[Doc]
    contacts: dict[str, Doc]
    claimed_at: float
    """``time.monotonic()`` of the claim or of its last extension."""


def _requeue(not_before: datetime, now: datetime) -> Doc:
    return {"$set": {"status": "queued", "not_before": not_before, "updated_at": now}, "$unset": dict(_CLAIM)}


@dataclass(kw_only=True)
class Sender:
    """Sends due deliveries in claimed batches and logs each outcome; asks ``branding`` for the municipality's."""

    repo: Repository
    settings: NotificationsSettings
    mailer: SmtpMailer
    branding: Branding
    unsubscribe: Unsubscribe
    renderer: Renderer = field(default_factory=Renderer)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a delivery is queued (a request, a resend): the sender looks at once."""
    on_outbox: Any = None
    """Called after a write that added outbox entries (``runtime.relay.notify``)."""
    _accepted: int = field(default=0, init=False)

    async def run_sender(self) -> None:
        """Send due deliveries until cancelled: poll, or wake when a request arrives."""
        while True:
            try:
                worked = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("sender_failed", error=type(exc).__name__)
                worked = 0
            if worked:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.sender_poll_seconds)

    async def send_due(self) -> int:
        """Send batch after batch until nothing is due, claiming the next batch while one is sent; return how many."""
        total = 0
        marking: asyncio.Task[int] | None = None
        try:
            batch = await self._claim_batch()
            while batch is not None:
                following = asyncio.create_task(self._claim_batch())
                try:
                    journaled = await self._send_batch(batch)
                except BaseException:
                    await asyncio.shield(self._abandon(following))
                    raise
                if marking is not None:
                    await marking
                # The log update of a batch runs while the next batch is sent.
                marking = asyncio.create_task(self.repo.mark_sent(batch.token, journaled, utcnow()))
                total += len(batch.docs)
                batch = await following
        finally:
            if marking is not None:
                await asyncio.shield(marking)
        return total

    async def _claim_batch(self) -> _Batch | None:
        """Claim up to ``SENDER_BATCH`` due deliveries with a new token and read their contacts; None when none."""
        now = utcnow()
        due = await self.repo.due(now, self.settings.sender_batch)
        if not due:
            return None
        stale = [d for d in due if d["status"] == "sending"]
        if stale:
            # Their worker died. What the journal lists as accepted is logged as sent, not sent again.
            recovered = await self.repo.recover(stale, now)
            if recovered:
                log.info("deliveries_recovered", count=recovered)
        token = uuid.uuid4().hex
        claimed_at = time.monotonic()
        docs = await self.repo.claim(due, token, now, now + timedelta(seconds=self.settings.lease_seconds))
        if not docs:
            return None  # other workers were quicker
        docs.sort(key=lambda d: d["not_before"])  # the store returns them in no order: the earliest due go first
        # One read for the batch's contacts: consent is read once per batch, shortly before sending.
        contacts = await self.repo.contacts_by_id(list({d["member_id"] for d in docs}))
        return _Batch(token=token, docs=docs, contacts=contacts, claimed_at=claimed_at)

    async def _abandon(self, claiming: asyncio.Task[_Batch | None]) -> None:
        """Give back the deliveries of a batch claimed in advance that will not be sent now."""
        with contextlib.suppress(Exception):
            batch = await claiming  # a few store round trips: cancelling could leave a claim without its owner
            if batch is not None:
                await self.repo.release(batch.token, [d["_id"] for d in batch.docs], utcnow())

    async def _send_batch(self, batch: _Batch) -> list[str]:
        """Send a claimed batch over the pool, journaling it chunk by chunk while sending on; return the journaled.

        ``SMTP_POOL_SIZE`` messages are in flight at any time; each ``SENDER_CHUNK`` finished ones
        are written while the next are sent (one write at a time, the sends wait for it when the
        next chunk is full first).
        """
        lease = timedelta(seconds=self.settings.lease_seconds)
        size = self._chunk_size()
        upcoming = iter(batch.docs)
        started = 0
        of: dict[asyncio.Task[_Outcome], Doc] = {}
        in_flight: set[asyncio.Task[_Outcome]] = set()
        finished: list[asyncio.Task[_Outcome]] = []
        journaled: list[str] = []
        writing: asyncio.Task[list[str]] | None = None
        chunks = itertools.count()

        async def start_sends() -> None:
            nonlocal started
            if time.monotonic() - batch.claimed_at > self.settings.lease_seconds / 4:
                return  # the lease is extended first
            # A message is only started in the first half of its lease (see _attempt): no other
            # worker takes it over while it is being sent.
            deadline = batch.claimed_at + self.settings.lease_seconds / 2
            while len(in_flight) < self.mailer.pool_size:
                if started % size == 0 and started < len(batch.docs):
                    await self._recheck_erasures(batch, batch.docs[started : started + size])
                doc = next(upcoming, None)
                if doc is None:
                    return
                started += 1
                task = asyncio.create_task(self._attempt(doc, batch.contacts.get(doc["member_id"]), deadline))
                of[task] = doc
                in_flight.add(task)

        def write(tasks: list[asyncio.Task[_Outcome]]) -> asyncio.Task[list[str]]:
            docs = [of[t] for t in tasks]
            journal_id = f"{batch.token}-{next(chunks)}"
            return asyncio.create_task(self._write_results(docs, tasks, batch.token, journal_id))

        try:
            await start_sends()
            while in_flight or time.monotonic() - batch.claimed_at > self.settings.lease_seconds / 4:
                if time.monotonic() - batch.claimed_at > self.settings.lease_seconds / 4:
                    batch.claimed_at = time.monotonic()
                    now = utcnow()
                    await self.repo.extend_claim(batch.token, now, now + lease)
                    await start_sends()
                    continue
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                finished.extend(done)
                if len(finished) >= size:
                    if writing is not None:
                        journaled += await writing
                    writing, finished = write(finished), []
                await start_sends()
            if writing is not None:
                journaled += await writing
                writing = None
            if finished:
                journaled += await write(finished)
        except BaseException:
            # Shutting down (or the store failed): what the server accepted is journaled and logged
            # now if possible; the rest waits for its lease (recover() logs what the journal has).
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.wait(in_flight)
            finished.extend(in_flight)
            if writing is not None:
                with contextlib.suppress(Exception):
                    journaled += await asyncio.shield(writing)
            if finished:
                with contextlib.suppress(Exception):
                    journaled += await asyncio.shield(write(finished))
            with contextlib.suppress(Exception):
                await asyncio.shield(self.repo.mark_sent(batch.token, journaled, utcnow()))
            raise
        return journaled

    async def _recheck_erasures(self, batch: _Batch, docs: Sequence[Doc]) -> None:
        """Read again, right before a chunk is sent, whether its members were erased since the batch was claimed."""
        municipality_of = {d["member_id"]: d["municipality"] for d in docs}
        for member_id in await self.repo.erasing(list(municipality_of)):
            batch.contacts[member_id] = {"_id": member_id, "municipality": municipality_of[member_id], "erased": True}

    def _chunk_size(self) -> int:
        """Return how many messages are sent before their results are written (bounded by the rate limit)."""
        size = self.settings.sender_chunk
        rate = self.settings.smtp_rate_per_second
        if rate > 0:
            size = min(size, max(1, int(rate * self.settings.lease_seconds / 4)))
        return size

    async def _write_results(
        self, docs: Sequence[Doc], tasks: Sequence[asyncio.Task[_Outcome]], token: str, journal_id: str
    ) -> list[str]:
        """Journal the accepted messages of a chunk and write the other outcomes; return the journaled ids."""
        now = utcnow()
        answers: dict[str, str] = {}
        sent_facts: list[OutgoingRecord] = []
        sent_contents: list[Doc] = []
        updates: list[tuple[str, Doc, Sequence[OutgoingRecord]]] = []
        contents: list[Doc] = []
        skipped: list[str] = []
        for doc, task in zip(docs, tasks, strict=True):
            if task.cancelled():
                continue  # still claimed: taken again when the lease runs out
            exc = task.exception()
            outcome = self._unexpected(doc, exc) if exc is not None else task.result()
            if outcome.kind == "sent":
                answers[doc["_id"]] = outcome.answer
                attempts = int(doc.get("attempts", 0)) + 1
                sent_facts.append(
                    self._record_of(DeliverySent(**self._fact_fields(doc, attempts=attempts), sent_at=now), doc, "sent")
                )
            elif outcome.kind == "update":
                assert outcome.update is not None
                updates.append((doc["_id"], outcome.update, outcome.records))
            else:
                skipped.append(doc["_id"])
            if outcome.content is not None:
                entry = {
                    "_id": doc["_id"],
                    "member_id": doc["member_id"],
                    "content": outcome.content,
                    "created_at": now,
                }
                (sent_contents if outcome.kind == "sent" else contents).append(entry)
        # Between the server's acceptance and this write a crash leaves the deliveries 'sending'
        # and unjournaled: when their lease runs out they are sent once more (same Message-ID).
        await self.repo.journal_sent(token, journal_id, answers, sent_facts, sent_contents, now)
        await self.repo.finish_each(token, updates, contents)
        await self.repo.release(token, skipped, now)
        if any(records for _, _, records in updates):
            self._notify_outbox()
        # The journal's facts wait for the relay's next poll (OUTBOX_POLL_SECONDS): waking it per chunk
        # would make it read every relayed collection per chunk, which on FerretDB costs a scan each.
        return list(answers)

    async def _attempt(self, doc: Doc, contact: Doc | None, deadline: float) -> _Outcome:
        """Decide and, if allowed, send one claimed delivery; return what to log (nothing is written here)."""
        now = utcnow()
        reason = domain.suppression_reason(contact, municipality=doc["municipality"], channel=doc["channel"])
        if reason == "unknown-member" and domain.holds_for_unknown_member(
            doc["created_at"], now, self.settings.unknown_member_grace_seconds
        ):
            # The request may have overtaken the member's snapshot: wait for it a while.
            wait = min(self.settings.retry_base_seconds, self.settings.unknown_member_grace_seconds)
            return _Outcome("update", update=_requeue(now + timedelta(seconds=wait), now))
        if domain.goes_by_post(contact, reason):
            assert contact is not None
            return await self._as_letter(doc, contact, now)
        if reason is not None:
            fact = DeliverySuppressed(**self._fact_fields(doc, attempts=0), reason=reason)
            log.info("delivery_suppressed", delivery_id=doc["_id"], municipality=doc["municipality"], reason=reason)
            update = {"$set": {"status": "suppressed", "reason": reason, "updated_at": now}, "$unset": _CLAIM}
            return _Outcome("update", update=update, records=(self._record_of(fact, doc, "suppressed"),))
        if time.monotonic() > deadline:
            return _Outcome("skip")
        assert contact is not None
        branding = await self.branding.branding_of(doc["municipality"])
        unsubscribe_url = (
            None
            if is_transactional(doc["template"])
            else self.unsubscribe.url(municipality=doc["municipality"], member_id=doc["member_id"], now=now)
        )
        rendered = self.renderer.render(
            doc["template"],
            language=contact.get("language") or domain.DEFAULT_LANGUAGE,
            params=doc.get("params") or {},
            member={
                "given_name": contact.get("given_name", ""),
                "family_name": contact.get("family_name", ""),
                "email": contact["email"],
            },
            branding=branding,
            unsubscribe_url=unsubscribe_url,
        )
        message = self._message(doc, contact["email"], rendered, branding, unsubscribe_url=unsubscribe_url)
        attempts = int(doc.get("attempts", 0)) + 1
        content = rendered.model_dump()
        try:
            answer = await self.mailer.send(message)
        except PermanentSmtpError as exc:
            return self._failed(doc, attempts, exc.answer, content)
        except TransientSmtpError as exc:
            return self._retry_or_fail(doc, attempts, exc.answer, content)
        self._count_accepted()
        return _Outcome("sent", answer=str(answer)[:500], content=content)

    async def _as_letter(self, doc: Doc, contact: Doc, now: datetime) -> _Outcome:
        """Render a printed letter for a member reached only by post; the run's PDF collects it (log: ``letter``)."""
        branding = await self.branding.branding_of(doc["municipality"])
        language = contact.get("language") or domain.DEFAULT_LANGUAGE
        params = doc.get("params") or {}
        rendered = self.renderer.render_letter(
            doc["template"],
            language=language,
            params=params,
            member={"given_name": contact.get("given_name", ""), "family_name": contact.get("family_name", "")},
            branding=branding,
        )
        content = {
            "subject": rendered.subject,
            "text": rendered.text,
            "recipient": domain.recipient_lines(contact),
            "language": language,
            "qr_url": params.get("rsvp_url") or params.get("verify_url"),
        }
        log.info("delivery_as_letter", delivery_id=doc["_id"], municipality=doc["municipality"])
        # The claim token names the run: one PDF per run holds its letters.
        update = {
            "$set": {"status": "letter", "channel": "post", "letter_run": doc["claim"], "updated_at": now},
            "$unset": {"lease_until": ""},
        }
        return _Outcome("update", update=update, content=content)

    def _retry_or_fail(self, doc: Doc, attempts: int, answer: str, content: Doc | None) -> _Outcome:
        if attempts >= self.settings.max_attempts:
            return self._failed(doc, attempts, f"retries used up: {answer}", content)
        now = utcnow()
        delay = domain.retry_delay(
            attempts, base=self.settings.retry_base_seconds, maximum=self.settings.retry_max_seconds
        )
        log.info("delivery_retry", delivery_id=doc["_id"], attempts=attempts, retry_in=delay.total_seconds())
        update = _requeue(now + delay, now)
        update["$set"].update(attempts=attempts, answer=answer[:500])
        return _Outcome("update", update=update)

    def _failed(self, doc: Doc, attempts: int, answer: str, content: Doc | None) -> _Outcome:
        now = utcnow()
        fact = DeliveryFailed(**self._fact_fields(doc, attempts=attempts), reason=answer[:500])
        log.warning("delivery_failed", delivery_id=doc["_id"], attempts=attempts)
        update = {
            "$set": {
                "status": "failed",
                "attempts": attempts,
                "answer": answer[:500],
                "reason": "smtp",
                "updated_at": now,
            },
            "$unset": _CLAIM,
        }
        update["$set"]["updated_at"] = now
        return _Outcome("update", update=update, records=(self._record_of(fact, doc, "failed"),), content=content)

    def _unexpected(self, doc: Doc, exc: BaseException) -> _Outcome:
        """Treat an error of our own (rendering, a bug) like a transient failure: retried with backoff, then failed."""
        log.warning("delivery_error", delivery_id=doc["_id"], error=type(exc).__name__)
        return self._retry_or_fail(doc, int(doc.get("attempts", 0)) + 1, f"internal error: {type(exc).__name__}", None)

    def _count_accepted(self) -> None:
        """Count a message the server accepted; the fault-injection setting may kill the process here."""
        self._accepted += 1
        if self._accepted == self.settings.fault_sigkill_after_accepted:
            log.warning("fault_injection_sigkill", accepted=self._accepted)
            os.kill(os.getpid(), signal.SIGKILL)

    def _message(
        self, doc: Doc, to: str, rendered: domain.RenderedMessage, branding: Doc, *, unsubscribe_url: str | None
    ) -> Message:
        # The address is the deployment's (its SPF/DKIM); the name and the Reply-To are the municipality's.
        _, address = parseaddr(self.settings.mail_from)
        reply_to = (
            formataddr((branding.get("contact_name") or branding["name"], branding["email"]))
            if branding.get("email")
            else None
        )
        headers = {"X-Engagiert-Delivery": doc["_id"], "X-Engagiert-Municipality": doc["municipality"]}
        if unsubscribe_url:
            # RFC 8058 one-click: the mail program POSTs "List-Unsubscribe=One-Click" to the HTTPS link.
            headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return compose(
            sender=formataddr((domain.sender_name(branding), address)),
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=domain.message_id_for(doc["_id"], self.settings.message_id_domain),
            headers=headers,
            reply_to=reply_to,
            calendar=rendered.calendar,
            calendar_method=rendered.calendar_method,
            images=rendered.images,
        )

    def _fact_fields(self, doc: Doc, *, attempts: int) -> dict[str, Any]:
        return {
            "delivery_id": doc["_id"],
            "request_id": doc["request_id"],
            "municipality": doc["municipality"],
            "member_id": doc["member_id"],
            "template": doc["template"],
            "channel": doc.get("channel", "email"),
            "attempts": attempts,
        }

    def _record_of(self, fact: Any, doc: Doc, outcome: str) -> OutgoingRecord:
        return make_record(fact, source=self.settings.source, event_id=f"{doc['_id']}.{outcome}")

    def _notify_outbox(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

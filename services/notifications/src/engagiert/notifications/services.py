"""Use cases of notifications: keep the contacts, accept and cancel requests, send due deliveries, resend."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from engagiert.notifications import domain
from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.mailer import PermanentSmtpError, SmtpMailer, TransientSmtpError
from engagiert.notifications.rendering import Renderer
from engagiert.notifications.repository import Doc, Repository
from engagiert.shared.contracts import (
    ConfirmErasure,
    DeliveryFailed,
    DeliverySent,
    DeliverySuppressed,
    MemberConsentChanged,
    MemberErased,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
    NotificationCancelRequested,
    NotificationRequested,
)
from engagiert.shared.envelope import Envelope, OutgoingRecord, make_record
from engagiert.shared.logging import get_logger

log = get_logger(__name__)

BRANDING_CACHE_SECONDS = 10.0
"""How long a process reuses a municipality's branding; another replica's change shows after this."""


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


@dataclass(kw_only=True)
class NotificationService:
    """The use cases of the service, with their dependencies passed in."""

    repo: Repository
    settings: NotificationsSettings
    mailer: SmtpMailer
    renderer: Renderer = field(default_factory=Renderer)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    on_outbox: Any = None
    """Called after a write that added outbox entries (``runtime.relay.notify``)."""
    _branding_cache: dict[str, tuple[float, Doc]] = field(default_factory=dict, init=False)

    # -- contacts (registry.members.v1) --------------------------------------------------------

    async def apply_member_events(self, events: Sequence[Envelope[Any]]) -> None:
        """Apply member facts to the contacts read model, in order, each once (revisions guard)."""
        for env in events:
            data = env.data
            if isinstance(data, MemberRegistered | MemberUpdated):
                doc = domain.contact_from_snapshot(data.member)
                if not await self.repo.insert_contact(doc):
                    fields = {k: v for k, v in doc.items() if k not in ("_id", "revision")}
                    await self.repo.update_contact_if_newer(data.member.member_id, data.member.revision, fields)
            elif isinstance(data, MemberStatusChanged):
                await self.repo.update_contact_if_newer(data.member_id, data.revision, {"status": data.status})
            elif isinstance(data, MemberConsentChanged):
                channels = [] if data.consent.withdrawn_at else list(data.consent.channels)
                await self.repo.update_contact_if_newer(data.member_id, data.revision, {"consent_channels": channels})
            elif isinstance(data, MemberErased):
                await self.erase(data, event_id=env.id)

    async def erase(self, data: MemberErased, *, event_id: str) -> None:
        """Delete a member's contact and the content of their messages, then confirm (DSGVO Art. 17)."""
        now = utcnow()
        # Content first: when we crash in between, the replayed event finds content left to erase.
        erased = await self.repo.erase_content(data.member_id, now)
        confirm = make_record(
            ConfirmErasure(
                member_id=data.member_id, municipality=data.municipality, service="notifications", erased_at=now
            ),
            source=self.settings.source,
            event_id=f"notifications-erasure-{event_id}"[:200],
        )
        tombstone: Doc = {
            "_id": data.member_id,
            "municipality": data.municipality,
            "erased": True,
            "erased_at": data.erased_at,
            "revision": 2**62,  # no later snapshot (a replay) may bring the data back
        }
        await self.repo.erase_contact(data.member_id, tombstone, [confirm])
        log.info("member_erased", member_id=data.member_id, municipality=data.municipality, deliveries=erased)
        self._notify_outbox()

    # -- requests (notifications.requests.v1) --------------------------------------------------

    async def apply_requests(self, events: Sequence[Envelope[Any]]) -> None:
        """Queue requested deliveries (idempotent by event id) and apply cancellations, in order."""
        now = utcnow()
        pending: list[Doc] = []
        for env in events:
            data = env.data
            if isinstance(data, NotificationRequested):
                pending.append(self._new_delivery(env.id, data, now))
            elif isinstance(data, NotificationCancelRequested):
                await self.repo.insert_deliveries(pending)
                pending = []
                count = await self.repo.cancel(
                    municipality=data.municipality, cancel_key=data.cancel_key, member_id=data.member_id, now=now
                )
                log.info("deliveries_cancelled", municipality=data.municipality, count=count, event_id=env.id)
        inserted = await self.repo.insert_deliveries(pending)
        if inserted:
            self.wake.set()

    def _new_delivery(self, event_id: str, data: NotificationRequested, now: datetime) -> Doc:
        not_before = max(data.not_before, now) if data.not_before else now
        return {
            "_id": domain.delivery_id_for(event_id),
            "request_id": event_id,
            "municipality": data.municipality,
            "member_id": data.member_id,
            "template": data.template,
            "params": dict(data.params),
            "channel": data.channel,
            "not_before": not_before,
            "cancel_key": data.cancel_key,
            "status": "queued",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }

    # -- sending -------------------------------------------------------------------------------

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
        """Claim and handle one batch of due deliveries; return how many were claimed."""
        due = await self.repo.due(utcnow(), self.settings.sender_batch)
        if not due:
            return 0
        # One read for the batch's contacts; consent is read again for a delivery claimed later.
        contacts = await self.repo.contacts_by_id(list({d["member_id"] for d in due}))
        gate = asyncio.Semaphore(self.settings.sender_concurrency)

        async def one(item: Doc) -> bool:
            async with gate:
                return await self.process(item["_id"], contact=contacts.get(item["member_id"]), prefetched=True)

        done = await asyncio.gather(*(one(d) for d in due))
        return sum(done)

    async def process(self, delivery_id: str, *, contact: Doc | None = None, prefetched: bool = False) -> bool:
        """Claim one delivery and send, postpone, suppress or fail it; return False when not claimed."""
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        doc = await self.repo.claim(delivery_id, now, lease)
        if doc is None:
            return False
        lease = doc["lease_until"]  # as stored (the store may round it)
        if not prefetched:
            contact = await self.repo.contact(doc["member_id"])
        reason = domain.suppression_reason(contact, municipality=doc["municipality"], channel=doc["channel"])
        if reason == "unknown-member" and domain.holds_for_unknown_member(
            doc["created_at"], now, self.settings.unknown_member_grace_seconds
        ):
            # The request may have overtaken the member's snapshot: wait for it a while.
            wait = min(self.settings.retry_base_seconds, self.settings.unknown_member_grace_seconds)
            await self.repo.finish(
                delivery_id,
                lease,
                {"$set": {"status": "queued", "not_before": now + timedelta(seconds=wait), "updated_at": now}},
                [],
            )
            return True
        if reason is not None:
            await self._suppress(doc, lease, reason, now)
            return True
        assert contact is not None
        await self._send(doc, lease, contact)
        return True

    async def _suppress(self, doc: Doc, lease: datetime, reason: domain.SuppressionReason, now: datetime) -> None:
        fact = DeliverySuppressed(**self._fact_fields(doc, attempts=0), reason=reason)
        await self.repo.finish(
            doc["_id"],
            lease,
            {"$set": {"status": "suppressed", "reason": reason, "updated_at": now}, "$unset": {"lease_until": ""}},
            [self._record(fact, doc, "suppressed")],
        )
        log.info("delivery_suppressed", delivery_id=doc["_id"], municipality=doc["municipality"], reason=reason)
        self._notify_outbox()

    async def _send(self, doc: Doc, lease: datetime, contact: Doc) -> None:
        branding = await self.branding_of(doc["municipality"])
        rendered = self.renderer.render(
            doc["template"],
            language=contact.get("language") or domain.DEFAULT_LANGUAGE,
            params=doc.get("params") or {},
            member={"given_name": contact.get("given_name", ""), "family_name": contact.get("family_name", "")},
            branding=branding,
        )
        message = self._message(doc, contact["email"], rendered, branding)
        attempts = int(doc.get("attempts", 0)) + 1
        content = rendered.model_dump()
        try:
            answer = await self.mailer.send(message)
        except PermanentSmtpError as exc:
            await self._fail(doc, lease, attempts, exc.answer, content)
            return
        except TransientSmtpError as exc:
            if attempts >= self.settings.max_attempts:
                await self._fail(doc, lease, attempts, f"retries used up: {exc.answer}", content)
                return
            now = utcnow()
            delay = domain.retry_delay(
                attempts, base=self.settings.retry_base_seconds, maximum=self.settings.retry_max_seconds
            )
            await self.repo.finish(
                doc["_id"],
                lease,
                {
                    "$set": {
                        "status": "queued",
                        "attempts": attempts,
                        "answer": exc.answer[:500],
                        "not_before": now + delay,
                        "updated_at": now,
                    }
                },
                [],
            )
            log.info("delivery_retry", delivery_id=doc["_id"], attempts=attempts, retry_in=delay.total_seconds())
            return
        # Between the server's acceptance above and this update a crash leaves the claim in
        # 'sending'; when its lease runs out it is sent once more (same Message-ID). See README.
        now = utcnow()
        fact = DeliverySent(**self._fact_fields(doc, attempts=attempts), sent_at=now)
        await self.repo.finish(
            doc["_id"],
            lease,
            {
                "$set": {
                    "status": "sent",
                    "attempts": attempts,
                    "answer": str(answer)[:500],
                    "sent_at": now,
                    "content": content,
                    "updated_at": now,
                },
                "$unset": {"lease_until": ""},
            },
            [self._record(fact, doc, "sent")],
        )
        self._notify_outbox()

    async def _fail(self, doc: Doc, lease: datetime, attempts: int, answer: str, content: dict[str, Any]) -> None:
        now = utcnow()
        fact = DeliveryFailed(**self._fact_fields(doc, attempts=attempts), reason=answer[:500])
        await self.repo.finish(
            doc["_id"],
            lease,
            {
                "$set": {
                    "status": "failed",
                    "attempts": attempts,
                    "answer": answer[:500],
                    "reason": "smtp",
                    "content": content,
                    "updated_at": now,
                },
                "$unset": {"lease_until": ""},
            },
            [self._record(fact, doc, "failed")],
        )
        log.warning("delivery_failed", delivery_id=doc["_id"], attempts=attempts)
        self._notify_outbox()

    def _message(self, doc: Doc, to: str, rendered: domain.RenderedMessage, branding: Doc) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.mail_from
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = domain.message_id_for(doc["_id"], self.settings.message_id_domain)
        msg["X-Engagiert-Delivery"] = doc["_id"]
        msg["X-Engagiert-Municipality"] = doc["municipality"]
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        return msg

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

    def _record(self, fact: Any, doc: Doc, outcome: str) -> OutgoingRecord:
        return make_record(fact, source=self.settings.source, event_id=f"{doc['_id']}.{outcome}")

    def _notify_outbox(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

    # -- branding, preview, resend -------------------------------------------------------------

    async def branding_of(self, municipality: str) -> Doc:
        """Return a municipality's branding (the default until it sets one), cached for a few seconds."""
        cached = self._branding_cache.get(municipality)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        branding = await self._load_branding(municipality)
        self._branding_cache[municipality] = (time.monotonic() + BRANDING_CACHE_SECONDS, branding)
        return branding

    async def _load_branding(self, municipality: str) -> Doc:
        stored = await self.repo.get_branding(municipality)
        if stored is None:
            return domain.default_branding(municipality)
        return {
            "municipality": municipality,
            "name": stored["name"],
            "signature": stored.get("signature", ""),
            "logo_url": stored.get("logo_url"),
        }

    async def set_branding(self, municipality: str, update: domain.BrandingUpdate) -> Doc:
        """Store a municipality's branding and return it."""
        fields = update.model_dump(mode="json")
        await self.repo.put_branding(municipality, fields, utcnow())
        self._branding_cache.pop(municipality, None)
        return {"municipality": municipality, **fields}

    async def preview(self, municipality: str, name: str, request: domain.PreviewRequest) -> domain.RenderedMessage:
        """Render template ``name`` with the municipality's branding and sample data."""
        return self.renderer.render(
            name,
            language=request.language,
            params=dict(request.params),
            member={"given_name": request.given_name, "family_name": request.family_name},
            branding=await self.branding_of(municipality),
        )

    async def resend(self, municipality: str, delivery_id: str) -> Doc | None:
        """Queue a new delivery with the same request as ``delivery_id`` (staff action); None if unknown."""
        original = await self.repo.delivery(municipality, delivery_id)
        if original is None:
            return None
        if original["status"] in ("queued", "sending"):
            raise ValueError("the delivery is still queued or being sent")
        number = await self.repo.count_resend(delivery_id)
        now = utcnow()
        doc: Doc = {
            "_id": f"{delivery_id}-r{number}",
            "request_id": original["request_id"],
            "municipality": municipality,
            "member_id": original["member_id"],
            "template": original["template"],
            "params": original.get("params") or {},
            "channel": original.get("channel", "email"),
            "not_before": now,
            "cancel_key": None,
            "status": "queued",
            "attempts": 0,
            "resend_of": delivery_id,
            "created_at": now,
            "updated_at": now,
        }
        if original.get("content_erased"):
            doc["content_erased"] = True
        await self.repo.insert_delivery(doc)
        self.wake.set()
        return doc

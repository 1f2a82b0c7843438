"""Runs the use cases: load, decide with the domain rules, save with the events in the same write."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymongo import UpdateOne

from engagiert.events import domain
from engagiert.events.config import EventsSettings
from engagiert.events.repository import SEATS_TAKEN, Doc, Repository
from engagiert.shared.contracts import (
    AttendanceRecorded,
    ConfirmErasure,
    EngagementEnded,
    EngagementStarted,
    EventData,
    HonourExpired,
    HonourGranted,
    HonourProposed,
    HonourRejected,
    HoursRecorded,
    InvitationIssued,
    InvitationPromoted,
    InvitationResponded,
    MemberErased,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
    NotificationCancelRequested,
    NotificationRequested,
    RecognitionEventCancelled,
    RecognitionEventChanged,
    RecognitionEventScheduled,
)
from engagiert.shared.contracts.notifications import TemplateName
from engagiert.shared.contracts.recognition import HonourKind, RecognitionKind
from engagiert.shared.envelope import Envelope, OutgoingRecord, make_record
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.outbox import outbox_fields, with_outbox
from engagiert.shared.problems import Problem

log = get_logger(__name__)

EventStatus = Literal["draft", "scheduled", "cancelled", "completed"]
_TRANSITIONS: dict[str, set[str]] = {
    "draft": {"scheduled", "cancelled"},
    "scheduled": {"cancelled", "completed"},
    "cancelled": set(),
    "completed": set(),
}
PREVIEW_SAMPLE = 50
CANCEL_FANOUT = "_cancel_fanout"  # on a cancelled event until every invitee's mail is requested
RESCHEDULE = "_reschedule_reminders"  # on an event whose deadline moved until open reminders follow it
REMINDER_FOR = "reminder_deadline"  # on an invitation: the deadline its latest reminder was requested for
NOTIFIED_OF_CANCELLATION = "cancellation_notified_at"  # on an invitation: its cancellation mail is requested
MAILED_ON_CANCELLATION = ("invited", "accepted", "waitlisted")
SEAT_ATTEMPTS = 5  # only a concurrent capacity change makes a seat take try again


def reminder_key(invitation_id: str) -> str:
    """Return the cancel key of an invitation's RSVP reminder."""
    return f"rsvp-reminder:{invitation_id}"


class EventCreate(BaseModel):
    """A new recognition event."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: RecognitionKind
    title: str = Field(min_length=1, max_length=200)
    starts_at: datetime
    venue: str = Field(min_length=1, max_length=300)
    capacity: int = Field(ge=1, le=100_000)
    guests_per_invitee: int = Field(default=0, ge=0, le=10)
    rsvp_deadline: datetime
    status: Literal["draft", "scheduled"] = "draft"

    @model_validator(mode="after")
    def _deadline_before_start(self) -> EventCreate:
        if self.starts_at.tzinfo is None or self.rsvp_deadline.tzinfo is None:
            raise ValueError("give starts_at and rsvp_deadline with a time zone")
        if self.rsvp_deadline > self.starts_at:
            raise ValueError("rsvp_deadline must not be after starts_at")
        return self


class EventUpdate(BaseModel):
    """Changes to a recognition event; omitted fields stay."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: datetime | None = None
    venue: str | None = Field(default=None, min_length=1, max_length=300)
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    guests_per_invitee: int | None = Field(default=None, ge=0, le=10)
    rsvp_deadline: datetime | None = None
    status: EventStatus | None = None
    reason: str | None = Field(default=None, max_length=500, description="why it is cancelled")


class Grant(BaseModel):
    """Staff grant a proposed honour."""

    model_config = ConfigDict(extra="forbid")

    card_number: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    valid_from: date | None = None


class Reject(BaseModel):
    """Staff reject a proposed honour."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class Recognition:
    """The events service's use cases over one repository."""

    def __init__(
        self,
        repo: Repository,
        settings: EventsSettings,
        *,
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.notify = notify
        self.clock = clock
        self._secret = settings.link_secret.get_secret_value()

    def _record(self, data: EventData, event_id: str | None = None) -> OutgoingRecord:
        return make_record(data, source=self.settings.source, event_id=event_id)

    # -- the member read model -----------------------------------------------------------------

    async def apply_member_events(self, events: Sequence[Envelope[Any]]) -> None:
        """Apply a batch of registry facts idempotently (revision guards, entry ids) and propose honours."""
        touched: dict[str, str] = {}
        for env in events:
            data = env.data
            member_id = data.member.member_id if isinstance(data, MemberRegistered | MemberUpdated) else data.member_id
            muni = data.member.municipality if isinstance(data, MemberRegistered | MemberUpdated) else data.municipality
            touched[member_id] = muni
        if not touched:
            return
        await self.repo.ensure_members(touched)
        ops: list[UpdateOne] = []
        erased: list[tuple[str, str, str]] = []
        ends: list[EngagementEnded] = []
        for env in events:
            data = env.data
            if isinstance(data, MemberRegistered | MemberUpdated):
                snap = data.member
                ops.append(
                    UpdateOne(
                        {
                            "_id": snap.member_id,
                            "erased": {"$ne": True},
                            "$or": [{"revision": {"$lt": snap.revision}}, {"revision": {"$exists": False}}],
                        },
                        {"$set": domain.read_model_fields(snap)},
                    )
                )
            elif isinstance(data, MemberStatusChanged):
                ops.append(
                    UpdateOne(
                        {
                            "_id": data.member_id,
                            "erased": {"$ne": True},
                            "$or": [{"revision": {"$lt": data.revision}}, {"revision": {"$exists": False}}],
                        },
                        {"$set": {"status": data.status, "revision": data.revision}},
                    )
                )
            elif isinstance(data, HoursRecorded):
                entry = {"entry_id": data.entry_id, "date": data.date_from.isoformat(), "hours": data.hours}
                ops.append(
                    UpdateOne(
                        {"_id": data.member_id, "erased": {"$ne": True}, "hours.entry_id": {"$ne": data.entry_id}},
                        {"$push": {"hours": entry}},
                    )
                )
            elif isinstance(data, EngagementStarted):
                e = data.engagement
                doc = {
                    "engagement_id": e.engagement_id,
                    "organisation_id": e.organisation_id,
                    "organisation_name": e.organisation_name,
                    "field": e.field,
                    "since": e.since.isoformat(),
                    "until": e.until.isoformat() if e.until else None,
                }
                ops.append(
                    UpdateOne(
                        {
                            "_id": data.member_id,
                            "erased": {"$ne": True},
                            "engagements.engagement_id": {"$ne": e.engagement_id},
                        },
                        {"$push": {"engagements": doc}},
                    )
                )
            elif isinstance(data, EngagementEnded):
                ends.append(data)
            elif isinstance(data, MemberErased):
                erased.append((data.member_id, data.municipality, env.id))
        await self.repo.apply(self.repo.members, ops)
        for end in ends:
            await self._end_engagement(end)
        for member_id, muni, event_id in erased:
            await self._erase(member_id, muni, event_id)
        erased_ids = {m for m, _, _ in erased}
        await self.propose_honours([m for m in touched if m not in erased_ids])

    async def _end_engagement(self, data: EngagementEnded) -> None:
        doc = await self.repo.members.find_one({"_id": data.member_id}, {"engagements": 1})
        if not doc:
            return
        for e in doc.get("engagements") or []:
            if e.get("engagement_id") == data.engagement_id and e.get("until") != data.until.isoformat():
                # $pullAll of the exact subdocument: FerretDB ignores a conditional $pull
                await self.repo.members.update_one({"_id": data.member_id}, {"$pullAll": {"engagements": [e]}})
                await self.repo.members.update_one(
                    {"_id": data.member_id}, {"$push": {"engagements": {**e, "until": data.until.isoformat()}}}
                )

    async def _erase(self, member_id: str, municipality: str, event_id: str) -> None:
        """Remove a member's personal data and confirm to the registry in the same write."""
        confirm = ConfirmErasure(
            member_id=member_id, municipality=municipality, service="events", erased_at=self.clock()
        )
        update = {
            "$set": {"erased": True, "status": "left", "erased_at": self.clock()},
            "$unset": {
                "given_name": "",
                "family_name": "",
                "date_of_birth": "",
                "hours": "",
                "engagements": "",
                "juleica": "",
            },
        }
        await self.repo.members.update_one(
            {"_id": member_id, "erased": {"$ne": True}},
            with_outbox(update, [self._record(confirm, event_id=f"{event_id}:confirm-erasure")]),
        )
        self.notify()
        log.info("member_erased", member_id=member_id, municipality=municipality)

    # -- recognition events --------------------------------------------------------------------

    async def create_event(self, municipality: str, body: EventCreate) -> Doc:
        """Create a recognition event (scheduled events publish their fact)."""
        event_id = uuid.uuid4().hex
        doc: Doc = {
            "_id": event_id,
            "municipality": municipality,
            **body.model_dump(),
            "created_at": self.clock(),
            SEATS_TAKEN: 0,
        }
        records = [self._scheduled(doc)] if body.status == "scheduled" else []
        await self.repo.insert_event({**doc, **outbox_fields(records)})
        self.notify()
        return doc

    def _scheduled(self, doc: Doc) -> OutgoingRecord:
        return self._record(
            RecognitionEventScheduled(
                event_id=doc["_id"],
                municipality=doc["municipality"],
                kind=doc["kind"],
                title=doc["title"],
                starts_at=doc["starts_at"],
                venue=doc["venue"],
                capacity=doc["capacity"],
                guests_per_invitee=doc["guests_per_invitee"],
                rsvp_deadline=doc["rsvp_deadline"],
            )
        )

    async def get_event(self, municipality: str, event_id: str) -> Doc:
        """Return an event or raise 404."""
        doc = await self.repo.event(municipality, event_id)
        if doc is None:
            raise Problem(404, "Not found", "no such recognition event")
        return doc

    async def update_event(self, municipality: str, event_id: str, body: EventUpdate) -> Doc:
        """Change an event or move it through its statuses; publish what changed."""
        doc = await self.get_event(municipality, event_id)
        changes = body.model_dump(exclude_unset=True, exclude={"status", "reason"})
        changes = {k: v for k, v in changes.items() if v is not None and doc.get(k) != v}
        status = body.status
        if status is not None and status != doc["status"] and status not in _TRANSITIONS[doc["status"]]:
            raise Problem(409, "Conflict", f"a {doc['status']} event cannot become {status}")
        if doc["status"] in ("cancelled", "completed") and changes:
            raise Problem(409, "Conflict", f"a {doc['status']} event cannot change")
        taken = int(doc.get(SEATS_TAKEN, 0))
        if "capacity" in changes and changes["capacity"] < taken:
            raise Problem(409, "Conflict", f"{taken} seats are taken already")
        new = {**doc, **changes}
        if new["rsvp_deadline"] > new["starts_at"]:
            raise Problem(422, "Invalid request", "rsvp_deadline must not be after starts_at")
        records: list[OutgoingRecord] = []
        if status == "scheduled" and doc["status"] == "draft":
            records.append(self._scheduled(new))
        elif changes and doc["status"] == "scheduled":
            records.append(
                self._record(
                    RecognitionEventChanged(
                        event_id=event_id,
                        municipality=municipality,
                        changed=sorted(changes),
                        starts_at=new["starts_at"],
                        venue=new["venue"],
                        capacity=new["capacity"],
                        rsvp_deadline=new["rsvp_deadline"],
                    )
                )
            )
        if status == "cancelled" and doc["status"] != "cancelled":
            records.append(
                self._record(
                    RecognitionEventCancelled(event_id=event_id, municipality=municipality, reason=body.reason)
                )
            )
        sets = {**changes, **({"status": status} if status else {})}
        cancelling = status == "cancelled" and doc["status"] != "cancelled"
        if cancelling:
            # Recorded in the cancelling write: the invitees' mails are requested even after a crash.
            sets[CANCEL_FANOUT] = True
            sets["cancellation_reason"] = body.reason
        rescheduling = "rsvp_deadline" in changes and (status or doc["status"]) == "scheduled"
        if rescheduling:
            # Recorded in the same write: the open reminders follow the new deadline even after a crash.
            sets[RESCHEDULE] = True
        if not sets:
            return doc
        # Guard on the status and seats read, so a concurrent RSVP or change is not overwritten blindly.
        guard: Doc = {"_id": event_id, "status": doc["status"]}
        if "capacity" in changes:
            guard["$or"] = [{SEATS_TAKEN: {"$lte": changes["capacity"]}}, {SEATS_TAKEN: {"$exists": False}}]
        updated = await self.repo.update_event(guard, with_outbox({"$set": sets}, records))
        if updated is None:
            raise Problem(409, "Conflict", "the event changed meanwhile; try again")
        self.notify()
        if cancelling:
            await self.notify_cancellation(updated)
        if rescheduling:
            await self.reschedule_reminders(updated)
        updated.pop("_outbox", None)
        updated.pop(CANCEL_FANOUT, None)
        updated.pop(RESCHEDULE, None)
        return updated

    async def reschedule_reminders(self, event: Doc) -> int:
        """Move the reminders of open invitations to the event's deadline: withdraw the old one, request anew (once).

        The new reminder's CloudEvent id names the deadline, and each invitation's write is guarded
        by the deadline its reminder follows, so a repeated or resumed run requests nothing twice.
        """
        deadline: datetime = event["rsvp_deadline"]
        ops: list[UpdateOne] = []
        for inv in await self.repo.invitations_of(event["_id"], status="invited"):
            if inv.get(REMINDER_FOR) == deadline:
                continue
            records = [
                self._cancel_reminder(event, inv),
                *self._reminder(
                    event, inv["_id"], inv["member_id"], event_id=f"{inv['_id']}:rsvp-reminder:{deadline.isoformat()}"
                ),
            ]
            ops.append(
                UpdateOne(
                    {"_id": inv["_id"], "status": "invited", REMINDER_FOR: {"$ne": deadline}},
                    with_outbox({"$set": {REMINDER_FOR: deadline}}, records),
                )
            )
        done = await self.repo.apply(self.repo.invitations, ops)
        # Only if the deadline did not move again meanwhile (then the flag stays for the next run).
        await self.repo.events.update_one(
            {"_id": event["_id"], "rsvp_deadline": deadline}, {"$unset": {RESCHEDULE: ""}}
        )
        if done:
            self.notify()
        log.info("reminders_rescheduled", event_id=event["_id"], invitations=done)
        return done

    async def finish_reschedules(self) -> int:
        """Finish moving reminders of events whose run was interrupted; return invitations done."""
        return await self._finish_flagged(RESCHEDULE, "scheduled", self.reschedule_reminders)

    async def _finish_flagged(self, flag: str, status: str, work: Callable[[Doc], Awaitable[int]]) -> int:
        """Run ``work`` again for every event still carrying ``flag`` (its run was interrupted); return the total."""
        done = 0
        for event in await self.repo.events.find({flag: True, "status": status}, {"_outbox": 0}).to_list(None):
            done += await work(event)
        return done

    async def notify_cancellation(self, event: Doc) -> int:
        """Request the cancellation mail for every invitee still concerned and withdraw open reminders (once each).

        Each invitation carries its own requests in its own outbox, written with a guard, so a
        repeated or resumed run requests nothing twice; the event's flag goes when all are done.
        """
        now = self.clock()
        ops: list[UpdateOne] = []
        for inv in await self.repo.invitations_to_notify_of_cancellation(event["_id"], MAILED_ON_CANCELLATION):
            request = NotificationRequested(
                municipality=event["municipality"],
                member_id=inv["member_id"],
                template="event-cancelled",
                params={
                    "event_title": event["title"],
                    "event_kind": event["kind"],
                    "event_date": event["starts_at"].isoformat(),
                    "venue": event["venue"],
                    "reason": event.get("cancellation_reason"),
                },
            )
            records = [self._record(request, event_id=f"{inv['_id']}:event-cancelled")]
            if inv["status"] == "invited":
                records.append(self._cancel_reminder(event, inv))
            ops.append(
                UpdateOne(
                    {"_id": inv["_id"], NOTIFIED_OF_CANCELLATION: {"$exists": False}},
                    with_outbox({"$set": {NOTIFIED_OF_CANCELLATION: now}}, records),
                )
            )
        done = await self.repo.apply(self.repo.invitations, ops)
        await self.repo.events.update_one({"_id": event["_id"]}, {"$unset": {CANCEL_FANOUT: ""}})
        if done:
            self.notify()
        log.info("cancellation_notified", event_id=event["_id"], invitees=done)
        return done

    async def run_due_work(self) -> dict[str, int]:
        """Do what is due now (the background loop calls it each round); return counts per kind of work."""
        return {
            "cancellation_mails": await self.finish_cancellations(),
            "reminders_rescheduled": await self.finish_reschedules(),
            # renewals first: a card the loop finds already past its validity is still offered one
            "renewals_proposed": await self.propose_renewals(),
            "honours_expired": await self.expire_honours(),
        }

    async def finish_cancellations(self) -> int:
        """Finish the invitee mails of cancelled events whose run was interrupted; return invitations done."""
        return await self._finish_flagged(CANCEL_FANOUT, "cancelled", self.notify_cancellation)

    # -- invitations ---------------------------------------------------------------------------

    async def _candidates(self, municipality: str, criteria: domain.InvitationCriteria) -> list[Doc]:
        today = self.clock().date()
        holders = await self.repo.holders(municipality, criteria.honour_kinds) if criteria.honour_kinds else None
        members = await self.repo.members_of(municipality)
        found = [m for m in members if domain.matches(m, criteria, today, honour_holders=holders)]
        return sorted(found, key=lambda m: m["_id"])

    async def preview(self, municipality: str, event_id: str, criteria: domain.InvitationCriteria) -> Doc:
        """Return who would be invited and how many would wait, without writing anything."""
        event = await self.get_event(municipality, event_id)
        found = await self._candidates(municipality, criteria)
        existing = {d["_id"]: d for d in await self.repo.invitation_ids(event_id)}
        new = [m for m in found if f"{event_id}:{m['_id']}" not in existing]
        offered = sum(1 for d in existing.values() if d.get("status") in domain.OFFERED)
        invite, wait = domain.split_offers([m["_id"] for m in new], capacity=event["capacity"], offered=offered)
        return {
            "matching": len(found),
            "already_invited": len(found) - len(new),
            "would_invite": len(invite),
            "would_waitlist": len(wait),
            "sample": [
                {"member_id": m["_id"], "given_name": m.get("given_name"), "family_name": m.get("family_name")}
                for m in new[:PREVIEW_SAMPLE]
            ],
        }

    def rsvp_url(self, invitation_id: str, expires_at: datetime) -> str:
        """Return the signed RSVP link of an invitation."""
        token = domain.sign_link(self._secret, purpose="rsvp", subject=invitation_id, expires_at=expires_at)
        return f"{self.settings.public_base_url.rstrip('/')}/rsvp/{token}"

    def _invitation_params(self, event: Doc, invitation_id: str) -> dict[str, Any]:
        starts: datetime = event["starts_at"]
        return {
            "event_title": event["title"],
            "event_kind": event["kind"],
            "event_date": starts.isoformat(),
            "venue": event["venue"],
            "guests_per_invitee": event["guests_per_invitee"],
            "rsvp_deadline": event["rsvp_deadline"].isoformat(),
            "rsvp_url": self.rsvp_url(invitation_id, event["rsvp_deadline"]),
        }

    async def issue(self, municipality: str, event_id: str, criteria: domain.InvitationCriteria) -> Doc:
        """Issue invitations by criteria: once per member, offers up to the capacity, the rest waitlisted."""
        event = await self.get_event(municipality, event_id)
        if event["status"] != "scheduled":
            raise Problem(409, "Conflict", "invitations go out for scheduled events only")
        if event["rsvp_deadline"] <= self.clock():
            raise Problem(409, "Conflict", "the RSVP deadline has passed")
        found = await self._candidates(municipality, criteria)
        existing = {d["_id"]: d for d in await self.repo.invitation_ids(event_id)}
        new_ids = [m["_id"] for m in found if f"{event_id}:{m['_id']}" not in existing]
        offered = sum(1 for d in existing.values() if d.get("status") in domain.OFFERED)
        seq = max((int(d.get("seq") or 0) for d in existing.values()), default=0)
        invite, wait = domain.split_offers(new_ids, capacity=event["capacity"], offered=offered)
        now = self.clock()
        docs: list[Doc] = []
        for member_id in new_ids:
            seq += 1
            inv_id = f"{event_id}:{member_id}"
            waitlisted = len(docs) >= len(invite)
            issued = InvitationIssued(
                invitation_id=inv_id,
                event_id=event_id,
                municipality=municipality,
                member_id=member_id,
                waitlisted=waitlisted,
                waitlist_position=seq if waitlisted else None,
            )
            # Deterministic CloudEvent ids: a repeated or resumed issue cannot request a second mail.
            records = [self._record(issued, event_id=f"{inv_id}:issued")]
            if not waitlisted:
                records.append(self._invitation_request(event, inv_id, member_id, "invitation"))
                records.extend(self._reminder(event, inv_id, member_id, event_id=f"{inv_id}:rsvp-reminder"))
            docs.append(
                {
                    "_id": inv_id,
                    "event_id": event_id,
                    "municipality": municipality,
                    "member_id": member_id,
                    "status": "waitlisted" if waitlisted else "invited",
                    "seq": seq,
                    "waitlist_position": seq if waitlisted else None,
                    "guests": 0,
                    "issued_at": now,
                    "attended": None,
                    **outbox_fields(records),
                }
            )
        inserted = await self.repo.insert_invitations(docs)
        self.notify()
        log.info("invitations_issued", event_id=event_id, new=inserted, waitlisted=len(wait))
        return {
            "matching": len(found),
            "issued": inserted,
            "invited": len(invite),
            "waitlisted": len(wait),
            "already_invited": len(found) - len(new_ids),
        }

    def _invitation_request(self, event: Doc, inv_id: str, member_id: str, template: TemplateName) -> OutgoingRecord:
        request = NotificationRequested(
            municipality=event["municipality"],
            member_id=member_id,
            template=template,
            params=self._invitation_params(event, inv_id),
            cancel_key=f"event:{event['_id']}",
        )
        return self._record(request, event_id=f"{inv_id}:{template}")

    def _reminder(self, event: Doc, inv_id: str, member_id: str, *, event_id: str | None) -> list[OutgoingRecord]:
        """Return the request to remind an invitee before the RSVP deadline (none when that time has passed)."""
        at = domain.reminder_at(event["rsvp_deadline"], self.settings.rsvp_reminder_hours, self.clock())
        if at is None:
            return []
        request = NotificationRequested(
            municipality=event["municipality"],
            member_id=member_id,
            template="rsvp-reminder",
            params=self._invitation_params(event, inv_id),
            not_before=at,
            cancel_key=reminder_key(inv_id),
        )
        return [self._record(request, event_id=event_id)]

    def _cancel_reminder(self, event: Doc, invitation: Doc) -> OutgoingRecord:
        """Return the request to withdraw an invitee's pending RSVP reminder."""
        cancel = NotificationCancelRequested(
            municipality=event["municipality"],
            cancel_key=reminder_key(invitation["_id"]),
            member_id=invitation["member_id"],
        )
        return self._record(cancel)

    async def invitations(self, municipality: str, event_id: str, status: str | None) -> list[Doc]:
        """Return an event's invitations."""
        await self.get_event(municipality, event_id)
        return await self.repo.invitations_of(event_id, status=status)

    async def summary(self, municipality: str, event_id: str) -> Doc:
        """Return an event with its seat and invitation counts."""
        event = await self.get_event(municipality, event_id)
        event["invitations"] = await self.repo.count_invitations(event_id)
        event["seats_taken"] = await self.repo.count_seats(event_id)
        return event

    # -- RSVP ----------------------------------------------------------------------------------

    async def open_link(self, token: str) -> tuple[Doc, Doc]:
        """Return (invitation, event) of a valid RSVP token; raise :class:`domain.LinkError` otherwise."""
        inv_id, _ = domain.verify_link(self._secret, token, purpose="rsvp", now=self.clock())
        invitation = await self.repo.invitation(inv_id)
        if invitation is None:
            raise domain.LinkError("forged")
        event = await self.repo.event(invitation["municipality"], invitation["event_id"])
        if event is None:
            raise domain.LinkError("forged")
        return invitation, event

    async def respond(self, token: str, *, accept: bool, guests: int) -> Doc:
        """Accept (guarded by free seats, else waitlist) or decline; a decline promotes the next in line."""
        invitation, event = await self.open_link(token)
        if event["status"] != "scheduled":
            raise Problem(409, "Conflict", "the event does not take answers")
        if not 0 <= guests <= event["guests_per_invitee"]:
            raise Problem(422, "Invalid request", f"bring at most {event['guests_per_invitee']} guests")
        if accept:
            return await self._accept(invitation, event, guests)
        return await self._decline(invitation, event)

    async def _accept(self, invitation: Doc, event: Doc, guests: int) -> Doc:
        if invitation["status"] == "accepted":
            return invitation
        if invitation["status"] != "invited":
            raise Problem(409, "Conflict", f"the invitation is {invitation['status']}")
        needed = domain.seats_needed(guests)
        if not await self._take_seats(event, needed):
            return await self._to_waitlist(invitation, event)
        responded = InvitationResponded(
            invitation_id=invitation["_id"],
            event_id=event["_id"],
            municipality=event["municipality"],
            member_id=invitation["member_id"],
            answer="accepted",
            guests=guests,
        )
        confirmation = NotificationRequested(
            municipality=event["municipality"],
            member_id=invitation["member_id"],
            template="rsvp-confirmation",
            params={**self._invitation_params(event, invitation["_id"]), "answer": "accepted", "guests": guests},
        )
        updated = await self.repo.update_invitation(
            {"_id": invitation["_id"], "status": "invited"},
            with_outbox(
                {"$set": {"status": "accepted", "guests": guests, "responded_at": self.clock()}},
                [self._record(responded), self._record(confirmation), self._cancel_reminder(event, invitation)],
            ),
        )
        if updated is None:
            # A concurrent answer won: give the seats back. (A crash right here leaves seats held,
            # never overbooked: the safe side.)
            await self.repo.release_seats(event["_id"], needed)
            current = await self.repo.invitation(invitation["_id"])
            return current or invitation
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def _take_seats(self, event: Doc, needed: int) -> bool:
        """Take ``needed`` seats at once, or none; return False when too few are free.

        A guarded ``$inc`` of the event's seat counter (atomic in the store). When the guard fails
        because staff changed the capacity meanwhile, try again with the new capacity. A crash
        between taking seats and saving the answer leaves seats held, never an overbooking.
        """
        for _ in range(SEAT_ATTEMPTS):
            if await self.repo.take_seats(event["_id"], event["capacity"], needed):
                return True
            current = await self.repo.event(event["municipality"], event["_id"])
            if current is None or current["capacity"] == event["capacity"] or current["status"] != "scheduled":
                return False
            event = current
        return False

    async def _to_waitlist(self, invitation: Doc, event: Doc) -> Doc:
        # After everyone waitlisted at issue time (positions = issue order), in order of answering.
        position = 1_000_000_000 + time.time_ns() // 1000
        request = NotificationRequested(
            municipality=event["municipality"],
            member_id=invitation["member_id"],
            template="rsvp-confirmation",
            params={**self._invitation_params(event, invitation["_id"]), "answer": "waitlisted"},
        )
        updated = await self.repo.update_invitation(
            {"_id": invitation["_id"], "status": "invited"},
            with_outbox(
                {"$set": {"status": "waitlisted", "waitlist_position": position, "responded_at": self.clock()}},
                [self._record(request), self._cancel_reminder(event, invitation)],
            ),
        )
        self.notify()
        result = updated or await self.repo.invitation(invitation["_id"]) or invitation
        result.pop("_outbox", None)
        return result

    async def _decline(self, invitation: Doc, event: Doc) -> Doc:
        if invitation["status"] == "declined":
            return invitation
        previous = invitation["status"]
        responded = InvitationResponded(
            invitation_id=invitation["_id"],
            event_id=event["_id"],
            municipality=event["municipality"],
            member_id=invitation["member_id"],
            answer="declined",
        )
        confirmation = NotificationRequested(
            municipality=event["municipality"],
            member_id=invitation["member_id"],
            template="rsvp-confirmation",
            params={**self._invitation_params(event, invitation["_id"]), "answer": "declined"},
        )
        records = [self._record(responded), self._record(confirmation)]
        if previous == "invited":  # only an open invitation has a reminder pending
            records.append(self._cancel_reminder(event, invitation))
        updated = await self.repo.update_invitation(
            {"_id": invitation["_id"], "status": previous},
            with_outbox({"$set": {"status": "declined", "responded_at": self.clock()}}, records),
        )
        if updated is None:
            raise Problem(409, "Conflict", "the invitation changed meanwhile; reload the page")
        if previous == "accepted":
            await self.repo.release_seats(event["_id"], domain.seats_needed(invitation.get("guests") or 0))
        if previous in domain.OFFERED:
            await self.promote_next(event)
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def promote_next(self, event: Doc) -> Doc | None:
        """Offer the freed place to the first waitlisted invitation (guarded: promoted once)."""
        for _ in range(5):
            nxt = await self.repo.first_waitlisted(event["_id"])
            if nxt is None:
                return None
            promoted = InvitationPromoted(
                invitation_id=nxt["_id"],
                event_id=event["_id"],
                municipality=event["municipality"],
                member_id=nxt["member_id"],
            )
            updated = await self.repo.update_invitation(
                {"_id": nxt["_id"], "status": "waitlisted"},
                with_outbox(
                    {"$set": {"status": "invited", "promoted_at": self.clock()}},
                    [
                        self._record(promoted),
                        self._invitation_request(event, nxt["_id"], nxt["member_id"], "waitlist-promoted"),
                        # a fresh id: an invitee promoted a second time is reminded again
                        *self._reminder(event, nxt["_id"], nxt["member_id"], event_id=None),
                    ],
                ),
            )
            if updated is not None:
                return updated
        return None

    # -- attendance ----------------------------------------------------------------------------

    async def record_attendance(self, municipality: str, event_id: str, invitation_id: str, attended: bool) -> Doc:
        """Record check-in (or a no-show) of an accepted invitee."""
        await self.get_event(municipality, event_id)
        inv = await self.repo.invitation(invitation_id)
        if inv is None or inv["event_id"] != event_id:
            raise Problem(404, "Not found", "no such invitation")
        if inv["status"] != "accepted":
            raise Problem(409, "Conflict", "only accepted invitations can be checked in")
        fact = AttendanceRecorded(
            invitation_id=invitation_id,
            event_id=event_id,
            municipality=municipality,
            member_id=inv["member_id"],
            attended=attended,
        )
        updated = await self.repo.update_invitation(
            {"_id": invitation_id, "status": "accepted"},
            with_outbox({"$set": {"attended": attended, "checked_in_at": self.clock()}}, [self._record(fact)]),
        )
        if updated is None:
            raise Problem(409, "Conflict", "the invitation changed meanwhile")
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def venue_csv(self, municipality: str, event_id: str) -> str:
        """Return the list for the venue: accepted invitees with guests and check-in (names from the read model)."""
        invitations = await self.invitations(municipality, event_id, "accepted")
        members = {m["_id"]: m for m in await self.repo.members_by_ids([i["member_id"] for i in invitations])}
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["invitation_id", "member_id", "family_name", "given_name", "guests", "attended"])
        rows: list[list[Any]] = []
        for inv in invitations:
            m = members.get(inv["member_id"], {})
            attended = "" if inv.get("attended") is None else ("ja" if inv["attended"] else "nein")
            rows.append(
                [
                    inv["_id"],
                    inv["member_id"],
                    m.get("family_name", ""),
                    m.get("given_name", ""),
                    inv["guests"],
                    attended,
                ]
            )
        rows.sort(key=lambda row: (str(row[2]).lower(), str(row[3]).lower()))
        writer.writerows(rows)
        return out.getvalue()

    # -- honours -------------------------------------------------------------------------------

    async def rules(self, municipality: str) -> domain.HonourRules:
        """Return a municipality's honour rules (state defaults where it has none)."""
        doc = await self.repo.rules(municipality)
        if not doc:
            return domain.HonourRules()
        doc.pop("_id", None)
        return domain.HonourRules.model_validate(doc)

    async def put_rules(self, municipality: str, rules: domain.HonourRules) -> domain.HonourRules:
        """Store a municipality's honour rules."""
        await self.repo.put_rules(municipality, rules.model_dump())
        return rules

    async def propose_honours(self, member_ids: Sequence[str]) -> int:
        """Propose every honour the members now qualify for and do not hold or have proposed yet."""
        if not member_ids:
            return 0
        today = self.clock().date()
        rules_cache: dict[str, domain.HonourRules] = {}
        docs: list[Doc] = []
        for member in await self.repo.members_by_ids(member_ids):
            muni = member["municipality"]
            if muni not in rules_cache:
                rules_cache[muni] = await self.rules(muni)
            for found in domain.eligible_honours(member, rules_cache[muni], today):
                honour_id = f"{member['_id']}:{found.kind}"
                proposed = HonourProposed(
                    honour_id=honour_id,
                    municipality=muni,
                    member_id=member["_id"],
                    kind=found.kind,
                    reason=found.reason,
                )
                docs.append(
                    {
                        "_id": honour_id,
                        "municipality": muni,
                        "member_id": member["_id"],
                        "kind": found.kind,
                        "status": "proposed",
                        "reason": found.reason,
                        "proposed_at": self.clock(),
                        **outbox_fields([self._record(proposed, event_id=f"{honour_id}:proposed")]),
                    }
                )
        new = await self.repo.insert_honours(docs)
        if new:
            self.notify()
        return new

    async def propose_local_award(self, municipality: str, member_id: str, title: str) -> Doc:
        """Propose a local award for a member (staff's own idea, not a rule)."""
        members = await self.repo.members_by_ids([member_id])
        if not members or members[0]["municipality"] != municipality or members[0].get("erased"):
            raise Problem(404, "Not found", "no such member")
        honour_id = f"{member_id}:local-award:{uuid.uuid4().hex[:8]}"
        proposed = HonourProposed(
            honour_id=honour_id, municipality=municipality, member_id=member_id, kind="local-award", reason=title
        )
        doc = {
            "_id": honour_id,
            "municipality": municipality,
            "member_id": member_id,
            "kind": "local-award",
            "status": "proposed",
            "reason": title,
            "proposed_at": self.clock(),
        }
        await self.repo.insert_honours([{**doc, **outbox_fields([self._record(proposed)])}])
        self.notify()
        return doc

    async def grant(self, municipality: str, honour_id: str, body: Grant) -> Doc:
        """Grant a proposed honour: card number, validity and a signed verification code."""
        honour = await self.repo.honour(municipality, honour_id)
        if honour is None:
            raise Problem(404, "Not found", "no such honour")
        if honour["status"] != "proposed":
            raise Problem(409, "Conflict", f"the honour is {honour['status']}")
        kind: HonourKind = honour["kind"]
        rules = await self.rules(municipality)
        today = self.clock().date()
        renews_from = honour.get("renews_from")
        valid_from = body.valid_from or (
            domain.renewal_valid_from(date.fromisoformat(renews_from), today) if renews_from else today
        )
        valid_until = domain.honour_valid_until(kind, rules, valid_from)
        card_number = body.card_number or f"{municipality}-{uuid.uuid4().hex[:10].upper()}"
        code = domain.sign_link(
            self._secret,
            purpose="card",
            subject=domain.card_subject(
                honour_id=honour_id, kind=kind, card_number=card_number, valid_until=valid_until
            ),
            expires_at=domain.card_code_expiry(valid_until),
        )
        granted = HonourGranted(
            honour_id=honour_id,
            municipality=municipality,
            member_id=honour["member_id"],
            kind=kind,
            card_number=card_number,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        request = NotificationRequested(
            municipality=municipality,
            member_id=honour["member_id"],
            template="honour-granted",
            params={
                "kind": kind,
                "card_number": card_number,
                "valid_from": valid_from.isoformat(),
                "valid_until": valid_until.isoformat() if valid_until else None,
                "verify_url": f"{self.settings.public_base_url.rstrip('/')}/v1/honours/verify/{code}",
            },
        )
        sets = {
            "status": "granted",
            "card_number": card_number,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
            "verification_code": code,
            "granted_at": self.clock(),
        }
        updated = await self.repo.update_honour(
            {"_id": honour_id, "status": "proposed"},
            with_outbox({"$set": sets}, [self._record(granted), self._record(request)]),
        )
        if updated is None:
            raise Problem(409, "Conflict", "the honour changed meanwhile")
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def reject(self, municipality: str, honour_id: str, body: Reject) -> Doc:
        """Reject a proposed honour with a reason."""
        honour = await self.repo.honour(municipality, honour_id)
        if honour is None:
            raise Problem(404, "Not found", "no such honour")
        fact = HonourRejected(
            honour_id=honour_id,
            municipality=municipality,
            member_id=honour["member_id"],
            kind=honour["kind"],
            reason=body.reason,
        )
        updated = await self.repo.update_honour(
            {"_id": honour_id, "status": "proposed"},
            with_outbox(
                {"$set": {"status": "rejected", "rejection_reason": body.reason, "rejected_at": self.clock()}},
                [self._record(fact)],
            ),
        )
        if updated is None:
            raise Problem(409, "Conflict", f"the honour is {honour['status']}")
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def expire_honours(self) -> int:
        """Mark granted honours whose last valid day has passed as expired (once each); return how many."""
        today = self.clock().date()
        ops: list[UpdateOne] = []
        for honour in await self.repo.granted_valid_until(before=today.isoformat(), lifelong=domain.LIFELONG):
            expired_on = date.fromisoformat(honour["valid_until"]) + timedelta(days=1)
            fact = HonourExpired(
                honour_id=honour["_id"],
                municipality=honour["municipality"],
                member_id=honour["member_id"],
                kind=honour["kind"],
                expired_on=expired_on,
            )
            ops.append(
                UpdateOne(
                    {"_id": honour["_id"], "status": "granted", "valid_until": honour["valid_until"]},
                    with_outbox(
                        {
                            "$set": {
                                "status": "expired",
                                "expired_on": expired_on.isoformat(),
                                "expired_at": self.clock(),
                            }
                        },
                        [self._record(fact, event_id=f"{honour['_id']}:expired")],
                    ),
                )
            )
        done = await self.repo.apply(self.repo.honours, ops)
        if done:
            self.notify()
        return done

    async def propose_renewals(self) -> int:
        """Propose the renewal of honours that expire within the renewal period and write to their holders (once)."""
        today = self.clock().date()
        horizon = today + timedelta(days=self.settings.honour_renewal_days)
        due = await self.repo.granted_valid_until(
            through=horizon.isoformat(), not_renewed=True, lifelong=domain.LIFELONG
        )
        if not due:
            return 0
        members = {m["_id"]: m for m in await self.repo.members_by_ids([h["member_id"] for h in due])}
        proposals: list[Doc] = []
        marks: list[UpdateOne] = []
        skips: list[UpdateOne] = []
        for honour in due:
            member = members.get(honour["member_id"]) or {}
            guard = {"_id": honour["_id"], "status": "granted", "renewal_proposed_at": {"$exists": False}}
            if member.get("erased") or member.get("status") == "left":
                skips.append(
                    UpdateOne(guard, {"$set": {"renewal_proposed_at": self.clock(), "renewal_skipped": "left"}})
                )
                continue
            valid_until: str = honour["valid_until"]
            new_id = domain.renewal_id(honour["member_id"], honour["kind"], valid_until)
            renews_from = date.fromisoformat(valid_until) + timedelta(days=1)
            title = domain.HONOUR_TITLES.get(honour["kind"], honour.get("reason") or honour["kind"])
            reason = f"Verlängerung (bisher gültig bis {valid_until})"
            proposed = HonourProposed(
                honour_id=new_id,
                municipality=honour["municipality"],
                member_id=honour["member_id"],
                kind=honour["kind"],
                reason=reason,
                renewal_of=honour["_id"],
            )
            proposals.append(
                {
                    "_id": new_id,
                    "municipality": honour["municipality"],
                    "member_id": honour["member_id"],
                    "kind": honour["kind"],
                    "status": "proposed",
                    "reason": reason,
                    "renewal_of": honour["_id"],
                    "renews_from": renews_from.isoformat(),
                    "proposed_at": self.clock(),
                    **outbox_fields([self._record(proposed, event_id=f"{new_id}:proposed")]),
                }
            )
            request = NotificationRequested(
                municipality=honour["municipality"],
                member_id=honour["member_id"],
                template="honour-renewal",
                params={
                    "kind": honour["kind"],
                    "honour_title": title,
                    "card_number": honour.get("card_number"),
                    "valid_until": valid_until,
                },
            )
            marks.append(
                UpdateOne(
                    guard,
                    with_outbox(
                        {"$set": {"renewal_proposed_at": self.clock(), "renewal_id": new_id}},
                        [self._record(request, event_id=f"{honour['_id']}:renewal:{valid_until}")],
                    ),
                )
            )
        # The proposal first (its id is fixed per validity, a repeat inserts nothing), then the
        # mark with the mail: a crash in between proposes nothing twice and still writes once.
        await self.repo.insert_honours(proposals)
        done = await self.repo.apply(self.repo.honours, marks)
        await self.repo.apply(self.repo.honours, skips)
        if done:
            self.notify()
        return done

    async def verify_card(self, code: str) -> Doc:
        """Check a card's verification code (signature, validity, and that it was not withdrawn)."""
        subject, _ = domain.verify_link(self._secret, code, purpose="card", now=self.clock())
        honour_id, kind, card_number, valid_until = subject.split("|")
        honour = await self.repo.honour_by_id(honour_id)
        if honour is None or honour.get("status") != "granted" or honour.get("verification_code") != code:
            raise domain.LinkError("forged")
        return {
            "valid": True,
            "kind": kind,
            "card_number": card_number,
            "valid_until": None if valid_until == "lifelong" else valid_until,
            "municipality": honour["municipality"],
        }

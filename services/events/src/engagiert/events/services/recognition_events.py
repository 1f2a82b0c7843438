"""Owns recognition events: create, change, schedule, cancel or complete them, and show one with its counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engagiert.events.repository import SEATS_TAKEN, Doc
from engagiert.events.services.common import UseCases
from engagiert.events.services.invitation_mails import CANCEL_FANOUT, CHANGE_FANOUT, RESCHEDULE, InvitationMails
from engagiert.shared.contracts import RecognitionEventCancelled, RecognitionEventChanged, RecognitionEventScheduled
from engagiert.shared.contracts.recognition import RecognitionKind
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.messaging.outbox import outbox_fields, with_outbox
from engagiert.shared.problems import Problem

EventStatus = Literal["draft", "scheduled", "cancelled", "completed"]
_TRANSITIONS: dict[str, set[str]] = {
    "draft": {"scheduled", "cancelled"},
    "scheduled": {"cancelled", "completed"},
    "cancelled": set(),
    "completed": set(),
}


class EventCreate(BaseModel):
    """A new recognition event."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: RecognitionKind
    title: str = Field(min_length=1, max_length=200)
    starts_at: datetime
    ends_at: datetime | None = None
    venue: str = Field(min_length=1, max_length=300)
    venue_address: str | None = Field(default=None, max_length=300, description="street, postal code and city")
    notes: str | None = Field(default=None, max_length=2000, description="shown in the invitation")
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
        if self.ends_at is not None and (self.ends_at.tzinfo is None or self.ends_at <= self.starts_at):
            raise ValueError("ends_at must be after starts_at, with a time zone")
        return self


class EventUpdate(BaseModel):
    """Changes to a recognition event; omitted fields stay."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    venue: str | None = Field(default=None, min_length=1, max_length=300)
    venue_address: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=2000)
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    guests_per_invitee: int | None = Field(default=None, ge=0, le=10)
    rsvp_deadline: datetime | None = None
    status: EventStatus | None = None
    reason: str | None = Field(default=None, max_length=500, description="why it is cancelled")


CALENDAR_FIELDS = frozenset({"starts_at", "ends_at", "venue", "venue_address"})
"""A change of these raises the event's calendar sequence and mails the open invitees (``event-changed``).

Title, notes, capacity, guests and deadline mail nobody: a corrected note or title is not worth a mail
to every invitee (staff write a letter when it is), the deadline moves the reminders (see RESCHEDULE)."""


@dataclass(kw_only=True)
class RecognitionEvents(UseCases):
    """Creates, changes and shows recognition events; the invitees' mails on a change go through ``mails``."""

    mails: InvitationMails

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
        changing = bool(CALENDAR_FIELDS & set(changes))
        if changing:
            # The invitees' calendar entries follow a change of time or place (iCalendar SEQUENCE).
            sets["calendar_sequence"] = int(doc.get("calendar_sequence") or 0) + 1
        mailing_change = changing and doc["status"] == "scheduled" and not cancelling
        if mailing_change:
            # Recorded in the changing write: the invitees' mails are requested even after a crash.
            sets[CHANGE_FANOUT] = True
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
            await self.mails.notify_cancellation(updated)
        if mailing_change:
            await self.mails.notify_change(updated)
        if rescheduling:
            await self.mails.reschedule_reminders(updated)
        updated.pop("_outbox", None)
        updated.pop(CANCEL_FANOUT, None)
        updated.pop(CHANGE_FANOUT, None)
        updated.pop(RESCHEDULE, None)
        return updated

    async def summary(self, municipality: str, event_id: str) -> Doc:
        """Return an event with its seat and invitation counts."""
        event = await self.get_event(municipality, event_id)
        event["invitations"] = await self.repo.count_invitations(event_id)
        event["seats_taken"] = await self.repo.count_seats(event_id)
        return event

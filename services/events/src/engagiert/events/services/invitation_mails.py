"""Owns the invitees' mails: RSVP links, invitations, reminders (after a moved deadline too), changes, cancellation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from engagiert.events import domain
from engagiert.events.repository import Doc
from engagiert.events.services.common import UseCases
from engagiert.shared.contracts import NotificationCancelRequested, NotificationRequested
from engagiert.shared.contracts.letters import LETTERS
from engagiert.shared.contracts.notifications import ParamValue, TemplateName
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.outbox import with_outbox

log = get_logger(__name__)


CANCEL_FANOUT = "_cancel_fanout"  # on a cancelled event until every invitee's mail is requested
RESCHEDULE = "_reschedule_reminders"  # on an event whose deadline moved until open reminders follow it
CHANGE_FANOUT = "_change_fanout"  # on an event whose time or venue changed until every invitee's mail is requested
REMINDER_FOR = "reminder_deadline"  # on an invitation: the deadline its latest reminder was requested for
NOTIFIED_OF_CANCELLATION = "cancellation_notified_at"  # on an invitation: its cancellation mail is requested
NOTIFIED_OF_CHANGE = "change_notified_sequence"  # on an invitation: the calendar sequence its change mail told
MAILED_ON_CANCELLATION = ("invited", "accepted", "waitlisted")
MAILED_ON_CHANGE = MAILED_ON_CANCELLATION
"""Who hears of a new time or venue: whoever still holds or waits for a place, or may still answer."""


def reminder_key(invitation_id: str) -> str:
    """Return the cancel key of an invitation's RSVP reminder."""
    return f"rsvp-reminder:{invitation_id}"


@dataclass(kw_only=True)
class InvitationMails(UseCases):
    """Builds the invitees' mail requests and follows an event's cancellation or moved deadline with them."""

    def rsvp_url(self, invitation_id: str, expires_at: datetime) -> str:
        """Return the signed RSVP link of an invitation."""
        token = domain.sign_link(self._secret, purpose="rsvp", subject=invitation_id, expires_at=expires_at)
        return f"{self.settings.public_base_url.rstrip('/')}/rsvp/{token}"

    def letter_params(
        self, event: Doc, invitation_id: str, template: TemplateName, **extra: ParamValue
    ) -> dict[str, ParamValue]:
        """Return the parameters of a letter about an invitation, built and checked with the kind's contract."""
        model = LETTERS[template]
        known: dict[str, Any] = {
            "invitation_id": invitation_id,
            "event_title": event["title"],
            "event_kind": event["kind"],
            "starts_at": event["starts_at"],
            "ends_at": event.get("ends_at"),
            "venue": event["venue"],
            "venue_address": event.get("venue_address"),
            "notes": event.get("notes"),
            # Raised by every change of time or venue: the calendar entry in the member's calendar follows.
            "calendar_sequence": int(event.get("calendar_sequence") or 0),
            "guests_per_invitee": event["guests_per_invitee"],
            "rsvp_deadline": event["rsvp_deadline"],
            "rsvp_url": self.rsvp_url(invitation_id, event["rsvp_deadline"]),
            "reason": event.get("cancellation_reason"),
        }
        fields = {k: v for k, v in known.items() if k in model.model_fields and v is not None}
        return model(**fields, **extra).to_params()

    def invitation_request(self, event: Doc, inv_id: str, member_id: str, template: TemplateName) -> OutgoingRecord:
        request = NotificationRequested(
            municipality=event["municipality"],
            member_id=member_id,
            template=template,
            params=self.letter_params(event, inv_id, template),
            cancel_key=f"event:{event['_id']}",
        )
        return self._record(request, event_id=f"{inv_id}:{template}")

    def reminder(self, event: Doc, inv_id: str, member_id: str, *, event_id: str | None) -> list[OutgoingRecord]:
        """Return the request to remind an invitee before the RSVP deadline (none when that time has passed)."""
        at = domain.reminder_at(event["rsvp_deadline"], self.settings.rsvp_reminder_hours, self.clock())
        if at is None:
            return []
        request = NotificationRequested(
            municipality=event["municipality"],
            member_id=member_id,
            template="rsvp-reminder",
            params=self.letter_params(event, inv_id, "rsvp-reminder"),
            not_before=at,
            cancel_key=reminder_key(inv_id),
        )
        return [self._record(request, event_id=event_id)]

    def cancel_reminder(self, event: Doc, invitation: Doc) -> OutgoingRecord:
        """Return the request to withdraw an invitee's pending RSVP reminder."""
        cancel = NotificationCancelRequested(
            municipality=event["municipality"],
            cancel_key=reminder_key(invitation["_id"]),
            member_id=invitation["member_id"],
        )
        return self._record(cancel)

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
                self.cancel_reminder(event, inv),
                *self.reminder(
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
                params=self.letter_params(event, inv["_id"], "event-cancelled"),
            )
            records = [self._record(request, event_id=f"{inv['_id']}:event-cancelled")]
            if inv["status"] == "invited":
                records.append(self.cancel_reminder(event, inv))
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

    async def notify_change(self, event: Doc) -> int:
        """Request the event-changed mail (its calendar entry at the event's sequence) for each open invitee, once.

        The mail's CloudEvent id and each invitation's guard name the calendar sequence, so a repeated
        or resumed run requests nothing twice and a second change mails again. The pending RSVP reminder
        of who has not answered is requested anew too, so it shows the new time and sequence.
        """
        sequence = int(event.get("calendar_sequence") or 0)
        deadline: datetime = event["rsvp_deadline"]
        ops: list[UpdateOne] = []
        for inv in await self.repo.invitations_to_notify_of_change(event["_id"], MAILED_ON_CHANGE, sequence):
            request = NotificationRequested(
                municipality=event["municipality"],
                member_id=inv["member_id"],
                template="event-changed",
                params=self.letter_params(event, inv["_id"], "event-changed"),
                cancel_key=f"event:{event['_id']}",
            )
            records = [self._record(request, event_id=f"{inv['_id']}:event-changed:{sequence}")]
            sets: Doc = {NOTIFIED_OF_CHANGE: sequence}
            if inv["status"] == "invited":
                records.append(self.cancel_reminder(event, inv))
                reminder_id = f"{inv['_id']}:rsvp-reminder:{deadline.isoformat()}:{sequence}"
                records += self.reminder(event, inv["_id"], inv["member_id"], event_id=reminder_id)
                sets[REMINDER_FOR] = deadline  # a moved deadline's run (reschedule_reminders) has nothing left to do
            guard: Doc = {
                "_id": inv["_id"],
                "status": inv["status"],
                "$or": [{NOTIFIED_OF_CHANGE: {"$exists": False}}, {NOTIFIED_OF_CHANGE: {"$lt": sequence}}],
            }
            ops.append(UpdateOne(guard, with_outbox({"$set": sets}, records)))
        done = await self.repo.apply(self.repo.invitations, ops)
        # Only if no later change came meanwhile (then the flag stays for that change's run).
        await self.repo.events.update_one(
            {"_id": event["_id"], "calendar_sequence": sequence}, {"$unset": {CHANGE_FANOUT: ""}}
        )
        if done:
            self.notify()
        log.info("change_notified", event_id=event["_id"], invitees=done, sequence=sequence)
        return done

    async def finish_changes(self) -> int:
        """Finish the invitee mails of changed events whose run was interrupted; return invitations done."""
        return await self._finish_flagged(CHANGE_FANOUT, "scheduled", self.notify_change)

    async def finish_cancellations(self) -> int:
        """Finish the invitee mails of cancelled events whose run was interrupted; return invitations done."""
        return await self._finish_flagged(CANCEL_FANOUT, "cancelled", self.notify_cancellation)

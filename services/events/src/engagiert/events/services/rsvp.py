"""Owns the invitees' answers: signed RSVP links, seats for those who accept, the waitlist, declines, promotion."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from engagiert.events import domain
from engagiert.events.repository import Doc
from engagiert.events.services.common import UseCases
from engagiert.events.services.invitation_mails import InvitationMails
from engagiert.shared.contracts import (
    InvitationPromoted,
    InvitationResponded,
    InvitationWithdrawn,
    NotificationRequested,
)
from engagiert.shared.messaging.outbox import with_outbox
from engagiert.shared.problems import Problem

SEAT_ATTEMPTS = 5  # only a concurrent capacity change makes a seat take try again


@dataclass(kw_only=True)
class Rsvp(UseCases):
    """Answers invitations through their signed links: accept with seats, waitlist, decline, promote the next."""

    mails: InvitationMails

    async def open_link(self, token: str) -> tuple[Doc, Doc]:
        """Return (invitation, event) of a valid RSVP token; raise :class:`domain.LinkError` otherwise."""
        inv_id, _ = domain.verify_link(self._secret, token, purpose="rsvp", now=self.clock())
        invitation = await self.repo.invitation(inv_id)
        if invitation is None:
            raise domain.LinkError("forged")
        if invitation["status"] == "withdrawn":
            raise domain.LinkError("revoked")
        event = await self.repo.event(invitation["municipality"], invitation["event_id"])
        if event is None:
            raise domain.LinkError("forged")
        # The link was signed to the deadline of its day; a deadline moved earlier since wins.
        deadline = event.get("rsvp_deadline")
        if isinstance(deadline, datetime):
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=UTC)
            if self.clock() >= deadline:
                raise domain.LinkError("expired")
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
            params=self.mails.letter_params(
                event, invitation["_id"], "rsvp-confirmation", answer="accepted", guests=guests
            ),
        )
        updated = await self.repo.update_invitation(
            {"_id": invitation["_id"], "status": "invited"},
            with_outbox(
                {"$set": {"status": "accepted", "guests": guests, "responded_at": self.clock()}},
                [self._record(responded), self._record(confirmation), self.mails.cancel_reminder(event, invitation)],
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
            params=self.mails.letter_params(event, invitation["_id"], "rsvp-confirmation", answer="waitlisted"),
        )
        updated = await self.repo.update_invitation(
            {"_id": invitation["_id"], "status": "invited"},
            with_outbox(
                {"$set": {"status": "waitlisted", "waitlist_position": position, "responded_at": self.clock()}},
                [self._record(request), self.mails.cancel_reminder(event, invitation)],
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
            params=self.mails.letter_params(event, invitation["_id"], "rsvp-confirmation", answer="declined"),
        )
        records = [self._record(responded), self._record(confirmation)]
        if previous == "invited":  # only an open invitation has a reminder pending
            records.append(self.mails.cancel_reminder(event, invitation))
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

    async def withdraw_open_invitations(self, member_id: str) -> int:
        """Withdraw an erased member's open invitations to events not over: seats freed, the next promoted."""
        withdrawn = 0
        for invitation in await self.repo.open_invitations_of_member(member_id):
            event = await self.repo.event(invitation["municipality"], invitation["event_id"])
            if event is None or event["status"] not in ("draft", "scheduled"):
                continue  # a cancelled or completed event keeps its record
            if await self._withdraw(invitation, event):
                withdrawn += 1
        if withdrawn:
            self.notify()
        return withdrawn

    async def _withdraw(self, invitation: Doc, event: Doc) -> bool:
        """Withdraw one invitation as a decline would end it, without writing to the member; False if it changed."""
        previous = invitation["status"]
        fact = InvitationWithdrawn(
            invitation_id=invitation["_id"],
            event_id=event["_id"],
            municipality=event["municipality"],
            member_id=invitation["member_id"],
        )
        records = [self._record(fact, event_id=f"{invitation['_id']}.withdrawn")]
        if previous == "invited":  # only an open invitation has a reminder pending
            records.append(self.mails.cancel_reminder(event, invitation))
        updated = await self.repo.update_invitation(
            {"_id": invitation["_id"], "status": previous},
            with_outbox({"$set": {"status": "withdrawn", "withdrawn_at": self.clock()}}, records),
        )
        if updated is None:
            return False  # answered meanwhile: a replay of the erasure finds it again
        if previous == "accepted":
            await self.repo.release_seats(event["_id"], domain.seats_needed(invitation.get("guests") or 0))
        if previous in domain.OFFERED:
            await self.promote_next(event)
        return True

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
                        self.mails.invitation_request(event, nxt["_id"], nxt["member_id"], "waitlist-promoted"),
                        # a fresh id: an invitee promoted a second time is reminded again
                        *self.mails.reminder(event, nxt["_id"], nxt["member_id"], event_id=None),
                    ],
                ),
            )
            if updated is not None:
                return updated
        return None

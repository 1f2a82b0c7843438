"""Owns issuing invitations by criteria (preview, offers up to the capacity, the rest waitlisted) and attendance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engagiert.events import domain
from engagiert.events.repository import INSERT_CHUNK, Doc
from engagiert.events.services.common import UseCases
from engagiert.events.services.invitation_mails import InvitationMails
from engagiert.events.services.recognition_events import RecognitionEvents
from engagiert.shared.contracts import AttendanceRecorded, InvitationIssued
from engagiert.shared.csvfiles import CsvDialect, write_csv
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.outbox import outbox_fields, with_outbox
from engagiert.shared.problems import Problem

log = get_logger(__name__)


PREVIEW_SAMPLE = 50


VENUE_COLUMNS = ("invitation_id", "member_id", "family_name", "given_name", "guests", "attended")


@dataclass(kw_only=True)
class Invitations(UseCases):
    """Issues an event's invitations by criteria, lists them and records attendance."""

    events: RecognitionEvents
    mails: InvitationMails

    async def _candidates(self, municipality: str, criteria: domain.InvitationCriteria) -> list[Doc]:
        today = self.clock().date()
        holders = await self.repo.holders(municipality, criteria.honour_kinds) if criteria.honour_kinds else None
        found: list[Doc] = []
        async for member in self.repo.members_of(municipality):
            if domain.matches(member, criteria, today, honour_holders=holders):
                # Only what a preview shows is kept: not every member's hours of a large municipality at once.
                found.append({k: member.get(k) for k in ("_id", "given_name", "family_name")})
        return sorted(found, key=lambda m: m["_id"])

    async def preview(self, municipality: str, event_id: str, criteria: domain.InvitationCriteria) -> Doc:
        """Return who would be invited and how many would wait, without writing anything."""
        event = await self.events.get_event(municipality, event_id)
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

    async def issue(self, municipality: str, event_id: str, criteria: domain.InvitationCriteria) -> Doc:
        """Issue invitations by criteria: once per member, offers up to the capacity, the rest waitlisted."""
        event = await self.events.get_event(municipality, event_id)
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
        inserted = 0
        # Built, inserted and handed to the relay a chunk at a time: the first mails go out while the
        # rest is written, and a process holds one chunk's documents and records, not the whole list.
        for start in range(0, len(new_ids), INSERT_CHUNK):
            docs: list[Doc] = []
            for index, member_id in enumerate(new_ids[start : start + INSERT_CHUNK], start=start):
                seq += 1
                docs.append(self._new_invitation(event, member_id, seq, waitlisted=index >= len(invite), now=now))
            inserted += await self.repo.insert_invitations(docs)
            self.notify()
        log.info("invitations_issued", event_id=event_id, new=inserted, waitlisted=len(wait))
        return {
            "matching": len(found),
            "issued": inserted,
            "invited": len(invite),
            "waitlisted": len(wait),
            "already_invited": len(found) - len(new_ids),
        }

    def _new_invitation(self, event: Doc, member_id: str, seq: int, *, waitlisted: bool, now: datetime) -> Doc:
        """Return a new invitation document with its outbox: the issued fact, and for an offer its mails."""
        event_id, municipality = event["_id"], event["municipality"]
        inv_id = f"{event_id}:{member_id}"
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
            records.append(self.mails.invitation_request(event, inv_id, member_id, "invitation"))
            records.extend(self.mails.reminder(event, inv_id, member_id, event_id=f"{inv_id}:rsvp-reminder"))
        return {
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

    async def invitations(self, municipality: str, event_id: str, status: str | None) -> list[Doc]:
        """Return an event's invitations."""
        await self.events.get_event(municipality, event_id)
        return await self.repo.invitations_of(event_id, status=status)

    async def record_attendance(self, municipality: str, event_id: str, invitation_id: str, attended: bool) -> Doc:
        """Record check-in (or a no-show) of an accepted invitee."""
        await self.events.get_event(municipality, event_id)
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

    async def venue_csv(self, municipality: str, event_id: str, *, dialect: CsvDialect = "rfc4180") -> bytes:
        """Return the list for the venue: accepted invitees with guests and check-in (names from the read model)."""
        invitations = await self.invitations(municipality, event_id, "accepted")
        members = {m["_id"]: m for m in await self.repo.members_by_ids([i["member_id"] for i in invitations])}
        rows: list[dict[str, Any]] = []
        for inv in invitations:
            m = members.get(inv["member_id"], {})
            attended = "" if inv.get("attended") is None else ("ja" if inv["attended"] else "nein")
            rows.append(
                {
                    "invitation_id": inv["_id"],
                    "member_id": inv["member_id"],
                    "family_name": m.get("family_name", ""),
                    "given_name": m.get("given_name", ""),
                    "guests": inv["guests"],
                    "attended": attended,
                }
            )
        rows.sort(key=lambda row: (str(row["family_name"]).lower(), str(row["given_name"]).lower()))
        return write_csv(rows, fieldnames=VENUE_COLUMNS, dialect=dialect)

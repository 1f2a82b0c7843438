"""Owns the read model of members: registry snapshots, hours and engagements applied once each, and its erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne

from engagiert.events import domain
from engagiert.events.services.common import UseCases
from engagiert.events.services.honours import Honours
from engagiert.events.services.rsvp import Rsvp
from engagiert.shared.contracts import (
    ConfirmErasure,
    EngagementEnded,
    EngagementStarted,
    HoursRecorded,
    MemberErased,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
)
from engagiert.shared.envelope import Envelope
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.outbox import with_outbox

log = get_logger(__name__)


@dataclass(kw_only=True)
class MemberReadModel(UseCases):
    """Applies the registry's member facts to the read model and asks ``honours`` what they now qualify for."""

    honours: Honours
    rsvp: Rsvp

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
        await self.honours.propose_honours([m for m in touched if m not in erased_ids])

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
        """End what the member still had (invitations, honours), remove their data, confirm in that write."""
        # Before the confirmation: a crash in between replays the erasure, which finds what is left.
        withdrawn = await self.rsvp.withdraw_open_invitations(member_id)
        revoked = await self.honours.revoke_of_member(member_id)
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
        log.info("member_erased", member_id=member_id, municipality=municipality, withdrawn=withdrawn, revoked=revoked)

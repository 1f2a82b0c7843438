"""Owns the read model of members: registry snapshots, hours and engagements applied once each, and its erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne

from engagiert.events import domain
from engagiert.events.repository import HOURS_PENDING, Doc
from engagiert.events.services.common import UseCases
from engagiert.events.services.honours import Honours
from engagiert.events.services.rsvp import Rsvp
from engagiert.shared import shredding
from engagiert.shared.contracts import (
    ConfirmErasure,
    EngagementEnded,
    EngagementStarted,
    HoursRecorded,
    MemberErased,
    MemberRegistered,
    MemberSnapshot,
    MemberStatusChanged,
    MemberUpdated,
    MunicipalityProfileChanged,
)
from engagiert.shared.envelope import Envelope
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.outbox import with_outbox
from engagiert.shared.messaging.sealed import open_snapshots

log = get_logger(__name__)


@dataclass(kw_only=True)
class MemberReadModel(UseCases):
    """Applies the registry's member facts to the read model and asks ``honours`` what they now qualify for."""

    honours: Honours
    rsvp: Rsvp
    keys: shredding.MemberKeys | None = None

    async def open_snapshots(self, events: Sequence[Envelope[Any]]) -> dict[str, MemberSnapshot | None]:
        """Return each member fact's snapshot opened with the member's key (None: the member was erased)."""
        if self.keys is None:
            self.keys = self.settings.member_keys()
        return await open_snapshots(events, self.keys)

    def forget_keys(self, member_ids: Sequence[str]) -> None:
        """Drop erased members' cached keys."""
        if self.keys is not None:
            for m in member_ids:
                self.keys.forget(m)

    async def apply_member_events(self, events: Sequence[Envelope[Any]]) -> None:
        """Apply a batch of registry facts idempotently (revision guards, entry ids) and propose honours."""
        profiles = [env.data for env in events if isinstance(env.data, MunicipalityProfileChanged)]
        for profile in profiles:
            await self.repo.put_municipality_if_newer(municipality_fields(profile))
        if profiles:
            events = [env for env in events if not isinstance(env.data, MunicipalityProfileChanged)]
        opened = await self.open_snapshots(events)
        touched: dict[str, str] = {}
        for env in events:
            data = env.data
            if env.id in opened and opened[env.id] is None:
                continue
            member_id = data.member.member_id if isinstance(data, MemberRegistered | MemberUpdated) else data.member_id
            muni = data.member.municipality if isinstance(data, MemberRegistered | MemberUpdated) else data.municipality
            touched[member_id] = muni
        if not touched:
            return
        await self.repo.ensure_members(touched)
        ops: list[UpdateOne] = []
        hours: list[HoursRecorded] = []
        erased: list[tuple[str, str, str]] = []
        ends: list[EngagementEnded] = []
        for env in events:
            data = env.data
            if isinstance(data, MemberRegistered | MemberUpdated):
                snap = opened[env.id]
                if snap is None:
                    continue  # its key is shredded: the member was erased
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
                hours.append(data)
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
        await self._apply_hours(hours)
        for end in ends:
            await self._end_engagement(end)
        for member_id, muni, event_id in erased:
            await self._erase(member_id, muni, event_id)
        erased_ids = {m for m, _, _ in erased}
        self.forget_keys(list(erased_ids))
        await self.honours.propose_honours([m for m in touched if m not in erased_ids])

    async def _apply_hours(self, facts: Sequence[HoursRecorded]) -> None:
        """Add hours entries to their members' day sums, each once, at a cost independent of the history.

        A member keeps its hours per day (``hours_by_day``; days before the 12-month window are
        dropped) and each applied entry gets a record keyed by its id (``hours_applied``). The
        member's update comes first and lists the entries it counted (``_hours_pending``); the
        records follow. A crash in between leaves them pending, so the redelivery finds them
        counted and does not count them again; the next batch drops the recorded ones from the list.
        """
        if not facts:
            return
        member_ids = list(dict.fromkeys(f.member_id for f in facts))
        state = await self.repo.hours_state(member_ids)
        pending_ids = [p for doc in state.values() for p in doc.get(HOURS_PENDING) or []]
        recorded = await self.repo.applied_hours([*dict.fromkeys(f.entry_id for f in facts), *pending_ids])
        first = domain.window_start(self.clock().date())
        pending = {m: [p for p in doc.get(HOURS_PENDING) or [] if p not in recorded] for m, doc in state.items()}
        legacy = {m: {h.get("entry_id") for h in doc.get("hours") or []} for m, doc in state.items()}
        sums: dict[str, dict[str, float]] = {m: {} for m in state}
        records: dict[str, Doc] = {}
        for fact in facts:
            doc = state.get(fact.member_id)
            if doc is None or doc.get("erased") or fact.entry_id in records:
                continue
            records[fact.entry_id] = {
                "_id": fact.entry_id,
                "member_id": fact.member_id,
                "date": fact.date_from.isoformat(),
                "hours": fact.hours,
            }
            m = fact.member_id
            if fact.entry_id in recorded or fact.entry_id in legacy[m] or fact.entry_id in pending[m]:
                continue  # counted already
            pending[m].append(fact.entry_id)
            day = fact.date_from.isoformat()
            if day > first:  # an entry from before the window is recorded but no longer counts
                sums[m][day] = sums[m].get(day, 0.0) + fact.hours
        ops: list[UpdateOne] = []
        for m, doc in state.items():
            before = doc.get(HOURS_PENDING) or []
            old = [day for day in doc.get("hours_by_day") or {} if day <= first]
            if not sums[m] and not old and pending[m] == before:
                continue
            update: Doc = {"$set": {HOURS_PENDING: pending[m]}}
            if sums[m]:
                update["$inc"] = {f"hours_by_day.{day}": h for day, h in sums[m].items()}
            if old:
                update["$unset"] = {f"hours_by_day.{day}": "" for day in old}
            ops.append(UpdateOne({"_id": m, "erased": {"$ne": True}}, update))
        await self.repo.apply(self.repo.members, ops)
        await self.repo.record_hours_applied(list(records.values()))

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
                "hours_by_day": "",
                HOURS_PENDING: "",
                "engagements": "",
                "juleica": "",
            },
        }
        await self.repo.members.update_one(
            {"_id": member_id, "erased": {"$ne": True}},
            with_outbox(update, [self._record(confirm, event_id=f"{event_id}:confirm-erasure")]),
        )
        await self.repo.forget_hours_of(member_id)
        self.notify()
        log.info("member_erased", member_id=member_id, municipality=municipality, withdrawn=withdrawn, revoked=revoked)


MUNICIPALITY_FIELDS = ("ags", "revision", "name", "kind", "inhabitants", "named_in_network")
"""What the read model keeps of a municipality's profile: what the network's figures show, no contact point."""


def municipality_fields(fact: MunicipalityProfileChanged) -> Doc:
    """Return the read model's document of a municipality's profile."""
    return fact.profile.model_dump(mode="json", include=set(MUNICIPALITY_FIELDS))

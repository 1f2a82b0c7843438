"""Owns the hours entries: record them, each with its HoursRecorded fact and the running totals."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from engagiert.registry import domain
from engagiert.registry.domain import HoursEntry, HoursIn
from engagiert.registry.repository import Conflict, Doc
from engagiert.registry.services.common import (
    InvalidChange,
    NotFound,
    UseCases,
    engagements_of,
    running_figures_of,
)
from engagiert.shared.contracts import HoursRecorded
from engagiert.shared.envelope import OutgoingRecord

SAVE_ATTEMPTS = 5
"""Tries of one save when another writer changed a member's figures meanwhile."""
PENDING_GRACE = timedelta(minutes=10)
"""How long an entry counted in the figures may stay unstored before it is taken out again (its
writer failed for good; a redelivery would count it afresh)."""


@dataclass(kw_only=True)
class Hours(UseCases):
    """Runs the use cases of hours; entries are inserted, never updated."""

    async def record_hours(self, ags: str, items: Sequence[tuple[str, HoursIn]], *, reported_by: str) -> list[Doc]:
        """Record hours for members of ``ags`` from ``(member_id, hours)`` pairs; NotFound for an unknown member."""
        ids = list(dict.fromkeys(m for m, _ in items))
        members = {d["_id"]: d for d in await self.repo.members_by_ids(ids)}
        for member_id in ids:
            doc = members.get(member_id)
            if doc is None or doc["municipality"] != ags or doc.get("erased"):
                raise NotFound(member_id)
        for _, item in items:
            if item.organisation_id and await self.repo.get_organisation(ags, item.organisation_id) is None:
                raise InvalidChange(f"unknown organisation {item.organisation_id}")
        batch = [(domain.new_id("h"), members[m], item, reported_by) for m, item in items]
        return await self.save(batch)

    async def save(self, batch: Sequence[tuple[str, Doc, HoursIn, str]]) -> list[Doc]:
        """Insert hours entries (idempotent by entry id), each with HoursRecorded carrying the running totals.

        The totals come from the members' running figures (``hours_figures``), so an entry costs
        the same whatever the member's history. Those figures are written first, guarded by their
        revision, listing the entries they count that are not stored yet (``pending``) and carrying
        the entries' facts in their outbox (one outbox per member and batch, not one per entry);
        then the entries go in. A crash in between leaves them pending: the redelivery finds them
        counted and neither counts them nor publishes their facts again.
        """
        for attempt in range(SAVE_ATTEMPTS):
            try:
                return await self._save_once(batch)
            except Conflict:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
        return []  # pragma: no cover - the loop returns or raises

    async def _save_once(self, batch: Sequence[tuple[str, Doc, HoursIn, str]]) -> list[Doc]:
        now = self.clock()
        today = now.date()
        fresh: dict[str, tuple[Doc, HoursIn, str]] = {}
        for entry_id, member, item, reported_by in batch:
            fresh.setdefault(entry_id, (member, item, reported_by))
        member_ids = list(dict.fromkeys(member["_id"] for member, _, _ in fresh.values()))
        # Independent reads at once (each is a round trip to the store); the pending entries of the
        # figures (left by a writer that crashed, rare) are looked up after.
        stored, existing = await asyncio.gather(self.repo.figures_of(member_ids), self.repo.existing_hours(list(fresh)))
        pending_ids = [p["id"] for doc in stored.values() for p in doc.get("pending") or [] if p["id"] not in fresh]
        if pending_ids:
            existing |= await self.repo.existing_hours(pending_ids)
        figures = await running_figures_of(self.repo, member_ids, stored, today=today)
        pending: dict[str, list[Doc]] = {}
        for member_id in member_ids:
            keep = []
            for p in (stored.get(member_id) or {}).get("pending") or []:
                if p["id"] in existing:
                    continue  # stored since: counted for good
                if p["id"] not in fresh and now - p["at"] > PENDING_GRACE:
                    figures[member_id].remove(_entry(p), today=today)  # its writer gave up: uncount it
                    continue
                keep.append(p)
            pending[member_id] = keep
        docs: list[Doc] = []
        facts: dict[str, list[OutgoingRecord]] = {m: [] for m in member_ids}
        out: list[Doc] = []
        for entry_id, (member, item, reported_by) in fresh.items():
            if entry_id in existing:
                continue
            member_id = member["_id"]
            counted = any(p["id"] == entry_id for p in pending[member_id])
            if not counted:
                entry = HoursEntry(hours=item.hours, date_from=item.date_from, date_to=item.date_to)
                figures[member_id].add(entry, today=today)
                pending[member_id].append(
                    {
                        "id": entry_id,
                        "hours": item.hours,
                        "date_from": item.date_from.isoformat(),
                        "date_to": item.date_to.isoformat() if item.date_to else None,
                        "at": now,
                    }
                )
            fact = HoursRecorded(
                entry_id=entry_id,
                member_id=member_id,
                municipality=member["municipality"],
                hours=item.hours,
                date_from=item.date_from,
                date_to=item.date_to,
                organisation_id=item.organisation_id,
                reported_by=reported_by[:200],
                totals=figures[member_id].totals(engagements_of(member), today=today),
            )
            doc = {
                "_id": entry_id,
                "member_id": member_id,
                "municipality": member["municipality"],
                "hours": item.hours,
                "date_from": item.date_from.isoformat(),
                "date_to": item.date_to.isoformat() if item.date_to else None,
                "organisation_id": item.organisation_id,
                "reported_by": reported_by[:200],
                "recorded_at": now,
            }
            docs.append(doc)
            if not counted:  # a counted entry's fact went out with the figures that counted it
                facts[member_id].append(self._record(fact))
            out.append({**fact.model_dump(mode="json")})
        changes = [
            (
                m,
                stored[m]["rev"] if m in stored else None,
                {"years": figures[m].years, "days": figures[m].pruned_days(today=today), "pending": pending[m]},
                facts[m],
            )
            for m in member_ids
        ]
        conflicts = await self.repo.save_figures(changes)
        if conflicts:
            raise Conflict(sorted(conflicts)[0])
        await self.repo.insert_hours(docs)
        self.notify()
        return out


def _entry(pending: Doc) -> HoursEntry:
    return HoursEntry(
        hours=float(pending["hours"]),
        date_from=date.fromisoformat(pending["date_from"]),
        date_to=date.fromisoformat(pending["date_to"]) if pending.get("date_to") else None,
    )

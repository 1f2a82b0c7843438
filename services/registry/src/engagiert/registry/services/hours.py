"""Owns the hours entries: record them, each with its HoursRecorded fact and the running totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engagiert.registry import domain
from engagiert.registry.domain import HoursEntry, HoursIn
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import InvalidChange, NotFound, UseCases, engagements_of
from engagiert.shared.contracts import HoursRecorded
from engagiert.shared.envelope import OutgoingRecord


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
        """Insert hours entries (idempotent by entry id), each with HoursRecorded carrying the running totals."""
        today = self.clock().date()
        member_ids = list(dict.fromkeys(d["_id"] for _, d, _, _ in batch))
        known: dict[str, list[HoursEntry]] = {m: [] for m in member_ids}
        seen: set[str] = set()
        for h in await self.repo.hours_of(member_ids):
            known[h["member_id"]].append(domain.entry_from_document(h))
            seen.add(h["_id"])
        docs: list[tuple[Doc, list[OutgoingRecord]]] = []
        out: list[Doc] = []
        for entry_id, member, item, reported_by in batch:
            if entry_id in seen:
                continue
            seen.add(entry_id)
            entries = known[member["_id"]]
            entries.append(HoursEntry(hours=item.hours, date_from=item.date_from, date_to=item.date_to))
            figures = domain.totals(entries, engagements_of(member), today=today)
            fact = HoursRecorded(
                entry_id=entry_id,
                member_id=member["_id"],
                municipality=member["municipality"],
                hours=item.hours,
                date_from=item.date_from,
                date_to=item.date_to,
                organisation_id=item.organisation_id,
                reported_by=reported_by[:200],
                totals=figures,
            )
            doc = {
                "_id": entry_id,
                "member_id": member["_id"],
                "municipality": member["municipality"],
                "hours": item.hours,
                "date_from": item.date_from.isoformat(),
                "date_to": item.date_to.isoformat() if item.date_to else None,
                "organisation_id": item.organisation_id,
                "reported_by": reported_by[:200],
                "recorded_at": self.clock(),
            }
            docs.append((doc, [self._record(fact)]))
            out.append({**fact.model_dump(mode="json")})
        await self.repo.insert_hours(docs)
        self.notify()
        return out

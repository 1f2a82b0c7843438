"""Computes the registry's figures per municipality and period, for the municipality and (anonymised) the network."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import NotFound, UseCases
from engagiert.shared.figures import (
    AGE_BANDS,
    FIELDS,
    Amount,
    Breakdown,
    Count,
    Figure,
    MunicipalityFigures,
    MunicipalityInfo,
    NetworkCache,
    Period,
    age_band,
    main_field,
    municipality_answer,
    network_answer,
)


def _day(value: Any) -> date | None:
    """Return the date of a stored datetime or ISO date (None when absent)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return None


def registry_figures(
    *, members: Iterable[Mapping[str, Any]], organisations: int, hours: Iterable[Mapping[str, Any]], period: Period
) -> dict[str, Figure]:
    """Return a municipality's registry figures for ``period`` from its members, organisations and hours entries.

    - ``members_active``: members whose status is ``active`` now and who were registered by the
      period's end (the register keeps no history of statuses);
    - ``members_new``: members registered within the period (erased people are not counted);
    - ``members_by_age_band`` / ``members_by_field``: the active members by age at the period's end
      and by main field (:func:`engagiert.shared.figures.main_field`); both add up to ``members_active``;
    - ``organisations``: organisations created by the period's end;
    - ``hours_total`` / ``hours_by_field``: hours of entries within the period (an entry over
      several days counted pro rata), by the member's main field; they add up to the total.
    """
    end = period.end
    field_of: dict[str, str] = {}
    active = new = 0
    bands: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    for member in members:
        registered = _day(member.get("created_at"))
        main = main_field(member.get("engagements") or [], on=end)
        field_of[str(member["_id"])] = main
        if registered is not None and period.start <= registered <= end:
            new += 1
        if member.get("status", "active") == "active" and (registered is None or registered <= end):
            active += 1
            bands[age_band(_day(member.get("date_of_birth")), on=end)] += 1
            fields[main] += 1
    hours_by_field: dict[str, float] = defaultdict(float)
    people_by_field: dict[str, set[str]] = defaultdict(set)
    for entry in hours:
        member_id = str(entry["member_id"])
        if member_id not in field_of:
            continue  # an erased member's entries are deleted with them; a leftover is not counted
        share = domain.hours_within(domain.entry_from_document(dict(entry)), start=period.start, end=end)
        if share > 0:
            hours_by_field[field_of[member_id]] += share
            people_by_field[field_of[member_id]].add(member_id)
    contributors = set().union(*people_by_field.values()) if people_by_field else set()
    return {
        "members_active": Count(active),
        "members_new": Count(new),
        "organisations": Count(organisations),
        "members_by_age_band": Breakdown({key: Count(bands[key]) for key in AGE_BANDS}, total="members_active"),
        "members_by_field": Breakdown({key: Count(fields[key]) for key in FIELDS}, total="members_active"),
        "hours_total": Amount(round(sum(hours_by_field.values()), 2), len(contributors)),
        "hours_by_field": Breakdown(
            {key: Amount(round(hours_by_field[key], 2), len(people_by_field[key])) for key in FIELDS},
            total="hours_total",
        ),
    }


@dataclass(kw_only=True)
class Figures(UseCases):
    """Runs the figures' use cases: a municipality's own figures and the network's, each in a few bulk reads."""

    network_cache: NetworkCache = field(default_factory=lambda: NetworkCache(0))

    async def of_municipality(self, ags: str, period: Period) -> dict[str, Any]:
        """Return the figures of ``ags`` for ``period`` (its own: nothing suppressed); NotFound when unknown."""
        if await self.repo.get_municipality(ags) is None:
            raise NotFound(ags)
        rows = await self._compute(period, ags=ags)
        return municipality_answer(ags=ags, period=period, source="registry", figures=rows.get(ags, {}))

    async def of_network(self, period: Period) -> dict[str, Any]:
        """Return every municipality's figures for ``period``, anonymised, with the quartiles (kept a while)."""
        return await self.network_cache.get(period.label, lambda: self._network(period))

    async def _network(self, period: Period) -> dict[str, Any]:
        municipalities = await self.repo.list_municipalities()
        computed = await self._compute(period, ags=None)
        rows = [
            MunicipalityFigures(municipality=info_of(doc), figures=computed.get(doc["_id"], {}))
            for doc in municipalities
        ]
        return network_answer(period=period, source="registry", rows=rows)

    async def _compute(self, period: Period, *, ags: str | None) -> dict[str, dict[str, Figure]]:
        """Return the figures of ``ags`` (None: of every municipality) from one read of each collection."""
        members = await self.repo.members_for_figures(ags)
        hours = await self.repo.hours_for_figures(start=period.start.isoformat(), end=period.end.isoformat(), ags=ags)
        organisations = await self.repo.organisation_counts(until=period.end_at, ags=ags)
        members_of: dict[str, list[Doc]] = defaultdict(list)
        for doc in members:
            members_of[doc["municipality"]].append(doc)
        hours_of: dict[str, list[Doc]] = defaultdict(list)
        for doc in hours:
            hours_of[doc["municipality"]].append(doc)
        keys = [ags] if ags is not None else sorted({*members_of, *hours_of, *organisations})
        return {
            key: registry_figures(
                members=members_of[key], organisations=organisations.get(key, 0), hours=hours_of[key], period=period
            )
            for key in keys
        }


def info_of(doc: Doc) -> MunicipalityInfo:
    """Return what the network answer shows of a municipality document."""
    return MunicipalityInfo(
        ags=doc["_id"],
        name=doc["name"],
        kind=doc["kind"],
        inhabitants=doc.get("inhabitants"),
        named=doc.get("named_in_network") is not False,
    )

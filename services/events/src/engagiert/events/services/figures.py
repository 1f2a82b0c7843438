"""Computes the events service's figures per municipality and period, for it and (anonymised) for the network."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engagiert.events.repository import Doc
from engagiert.events.services.common import UseCases
from engagiert.shared.figures import (
    Breakdown,
    Count,
    Figure,
    MunicipalityFigures,
    MunicipalityInfo,
    NetworkCache,
    Period,
    Rate,
    municipality_answer,
    network_answer,
)

HONOUR_KEYS: dict[str, str] = {
    "ehrenamtskarte": "ehrenamtskarte",
    "jubilaeums-ehrenamtskarte": "jubilaeums_ehrenamtskarte",
    "engagementnachweis": "engagementnachweis",
    "local-award": "local_award",
}
"""Honour kinds -> the figures' ASCII keys."""
CARDS_AHEAD = timedelta(days=90)
"""``cards_expiring`` looks this far past the period's end."""
TOOK_PLACE = ("scheduled", "completed")
"""Statuses of events that took place once their start has passed (drafts never went out; cancelled did not)."""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def events_figures(
    *,
    events: Iterable[Mapping[str, Any]],
    invitations: Iterable[Mapping[str, Any]],
    honours_granted: Mapping[str, int],
    cards_expiring: int,
    now: datetime,
) -> dict[str, Figure]:
    """Return a municipality's events figures from its events of the period and their invitation counts.

    - ``events_held``: events of the period that took place: started before now, neither a draft
      nor cancelled;
    - ``invitations_accepted_rate``: over the invitations to those events that were offered a
      place, the share accepted (accepted / (accepted + declined + not answered));
    - ``attendance_rate``: over the held events where staff recorded attendance (check-in) for
      at least one guest, attended / accepted; events without any check-in are left out, since
      nothing says who came;
    - ``honours_granted`` / ``honours_granted_by_type``: honours granted in the period (whatever
      became of them since, revoked ones included);
    - ``cards_expiring``: see :meth:`Figures._compute`.
    """
    held = {str(e["_id"]) for e in events if e.get("status") in TOOK_PLACE and _aware(e["starts_at"]) < now}
    per_event: dict[str, Counter[tuple[str, Any]]] = defaultdict(Counter)
    for row in invitations:
        key = row["_id"]
        if key["e"] in held:
            per_event[key["e"]][(key["s"], key.get("a"))] += int(row["n"])
    accepted = offered = attended = accepted_checked = 0
    for counts in per_event.values():
        took = sum(n for (status, _), n in counts.items() if status == "accepted")
        accepted += took
        offered += sum(n for (status, _), n in counts.items() if status in ("accepted", "declined", "invited"))
        if any(status == "accepted" and a is not None for (status, a) in counts):
            accepted_checked += took
            attended += counts[("accepted", True)]
    by_type = {key: Count(honours_granted.get(kind, 0)) for kind, key in HONOUR_KEYS.items()}
    return {
        "events_held": Count(len(held)),
        "invitations_accepted_rate": Rate(accepted, offered),
        "attendance_rate": Rate(attended, accepted_checked),
        "honours_granted": Count(sum(c.value for c in by_type.values())),
        "honours_granted_by_type": Breakdown(by_type, total="honours_granted"),
        "cards_expiring": Count(cards_expiring),
    }


@dataclass(kw_only=True)
class Figures(UseCases):
    """Runs the figures' use cases: a municipality's own figures and the network's, each in a few bulk reads."""

    network_cache: NetworkCache = field(default_factory=lambda: NetworkCache(0))

    async def of_municipality(self, ags: str, period: Period) -> dict[str, Any]:
        """Return the figures of ``ags`` for ``period`` (its own: nothing suppressed)."""
        computed = await self._compute(period, municipality=ags)
        figures = computed.get(ags) or self._empty()
        return municipality_answer(ags=ags, period=period, source="events", figures=figures)

    async def of_network(self, period: Period) -> dict[str, Any]:
        """Return every known municipality's figures for ``period``, anonymised, with the quartiles (kept a while)."""
        return await self.network_cache.get(period.label, lambda: self._network(period))

    async def _network(self, period: Period) -> dict[str, Any]:
        municipalities = await self.repo.list_municipalities()
        computed = await self._compute(period, municipality=None)
        rows = [
            MunicipalityFigures(municipality=info_of(doc), figures=computed.get(doc["_id"]) or self._empty())
            for doc in municipalities
        ]
        return network_answer(period=period, source="events", rows=rows)

    def _empty(self) -> dict[str, Figure]:
        return events_figures(events=[], invitations=[], honours_granted={}, cards_expiring=0, now=self.clock())

    async def _compute(self, period: Period, *, municipality: str | None) -> dict[str, dict[str, Figure]]:
        """Return the figures of ``municipality`` (None: of all) from one read or aggregation per collection.

        ``cards_expiring``: Ehrenamtskarten (the honours with a validity end) granted and not revoked
        whose last valid day falls from the period's start to 90 days past its end and that were
        valid by the period's end: the cards to renew in and right after the period.
        """
        events = await self.repo.events_for_figures(start=period.start_at, end=period.end_at, municipality=municipality)
        counts = await self.repo.invitation_counts([e["_id"] for e in events])
        granted = await self.repo.honours_granted_counts(
            start=period.start_at, end=period.end_at, municipality=municipality
        )
        cards = await self.repo.cards_expiring_counts(
            first=period.start.isoformat(),
            last=(period.end + CARDS_AHEAD).isoformat(),
            valid_by=period.end.isoformat(),
            municipality=municipality,
        )
        events_of: dict[str, list[Doc]] = defaultdict(list)
        municipality_of: dict[str, str] = {}
        for doc in events:
            events_of[doc["municipality"]].append(doc)
            municipality_of[str(doc["_id"])] = doc["municipality"]
        counts_of: dict[str, list[Doc]] = defaultdict(list)
        for row in counts:
            counts_of[municipality_of[row["_id"]["e"]]].append(row)
        granted_of: dict[str, dict[str, int]] = defaultdict(dict)
        for row in granted:
            granted_of[row["_id"]["m"]][row["_id"]["k"]] = int(row["n"])
        keys = {*events_of, *granted_of, *cards}
        now = self.clock()
        return {
            key: events_figures(
                events=events_of[key],
                invitations=counts_of[key],
                honours_granted=granted_of[key],
                cards_expiring=cards.get(key, 0),
                now=now,
            )
            for key in keys
        }


def info_of(doc: Doc) -> MunicipalityInfo:
    """Return what the network answer shows of a municipality of the read model."""
    return MunicipalityInfo(
        ags=doc["_id"],
        name=doc.get("name") or doc["_id"],
        kind=doc.get("kind") or "Gemeinde",
        inhabitants=doc.get("inhabitants"),
        named=doc.get("named_in_network") is not False,
    )

"""Page 1, the start page: the municipality's figures at a glance, each linking to its list."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engagiert.console import clients
from engagiert.console import figures as fig
from engagiert.console.deps import CurrentTenant, CurrentUser, Services
from engagiert.console.rendering import render, request_language

router = APIRouter(prefix="/m/{ags}", tags=["start"])

COUNT_LIMIT = 500
"""The start page reads at most this many members and deliveries per figure (``500+`` beyond)."""


@dataclass(frozen=True, slots=True)
class Figure:
    """A count on the start page; ``more`` when the count stopped at the limit."""

    value: float
    more: bool = False


async def _member_figures(api: clients.Services, ags: str) -> dict[str, Figure]:
    page = await api.registry.members(ags, status="active", limit=COUNT_LIMIT)
    year = str(datetime.now(UTC).year)
    more = page.next_cursor is not None
    return {
        "active": Figure(len(page.items), more),
        "hours_year": Figure(round(sum(m.totals.hours_by_year.get(year, 0.0) for m in page.items), 1), more),
        "hours_12m": Figure(round(sum(m.totals.hours_last_12_months for m in page.items), 1), more),
    }


async def _upcoming(api: clients.Services, ags: str) -> list[clients.RecognitionEvent]:
    now = datetime.now(UTC)
    events = [e for e in await api.events.events(ags) if e.starts_at >= now and e.status in ("scheduled", "draft")]
    events.sort(key=lambda e: e.starts_at)
    return list(await asyncio.gather(*(api.events.event(ags, e.id) for e in events[:5])))


@dataclass(frozen=True, slots=True)
class Comparison:
    """A figure of the municipality beside the network's median and the median of its kind (formatted)."""

    name: str
    own: str
    network: str
    same_kind: str


async def _comparison(api: clients.Services, ags: str, *, lang: str) -> tuple[list[Comparison], list[str], str | None]:
    """Return this year's figures beside the network's medians, the services that offer none yet, and the kind."""
    period = str(fig.current_year())
    sources = {"registry": api.registry, "events": api.events}
    answers = await asyncio.gather(
        fig.maybe(api.registry.municipality(ags)),
        *(fig.maybe(c.figures(ags, period=period)) for c in sources.values()),
        *(fig.maybe(c.network_figures(period=period)) for c in sources.values()),
    )
    municipality: clients.Municipality | None = answers[0]
    kind = municipality.kind if municipality else None
    own = dict(zip(sources, answers[1:3], strict=True))
    network = dict(zip(sources, answers[3:5], strict=True))
    rows: list[Comparison] = []
    missing: list[str] = []
    for source in sources:
        mine: clients.Figures | None = own[source]
        net: clients.NetworkFigures | None = network[source]
        if mine is None and net is None:
            missing.append(source)
            continue
        for name in fig.SCALARS[source]:
            rate = name in fig.RATES
            kinds = net.same_kind.get(kind or "", {}) if net else {}
            rows.append(
                Comparison(
                    name=name,
                    own=fig.fmt(fig.scalar(mine.figures if mine else None, name), lang, rate=rate),
                    network=fig.fmt(fig.median(net.network if net else None, name), lang, rate=rate),
                    same_kind=fig.fmt(fig.median(kinds, name), lang, rate=rate),
                )
            )
    return rows, missing, kind


@router.get("/", summary="The start page")
async def start(request: Request, tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """Show members, hours, upcoming events, open proposals, failed deliveries, and this year beside the network."""
    members, upcoming, proposed, failed, (comparison, missing, kind) = await asyncio.gather(
        _member_figures(api, tenant.ags),
        _upcoming(api, tenant.ags),
        api.events.honours(tenant.ags, status="proposed"),
        api.notifications.deliveries(tenant.ags, status="failed", limit=COUNT_LIMIT),
        _comparison(api, tenant.ags, lang=request_language(request)),
    )
    context: dict[str, Any] = {
        "figures": {
            **members,
            "proposals": Figure(len(proposed)),
            "failed": Figure(len(failed), len(failed) >= COUNT_LIMIT),
        },
        "upcoming": upcoming,
        "comparison": comparison,
        "comparison_missing": missing,
        "kind": kind,
        "year": fig.current_year(),
    }
    return render(request, "start.html", context)

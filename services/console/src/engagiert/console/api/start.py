"""Page 1, the start page: the municipality's figures at a glance, each linking to its list."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services
from engagiert.console.rendering import render

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


@router.get("/", summary="The start page")
async def start(request: Request, tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """Show active members, hours, upcoming events with RSVP counts, open proposals and failed deliveries."""
    members, upcoming, proposed, failed = await asyncio.gather(
        _member_figures(api, tenant.ags),
        _upcoming(api, tenant.ags),
        api.events.honours(tenant.ags, status="proposed"),
        api.notifications.deliveries(tenant.ags, status="failed", limit=COUNT_LIMIT),
    )
    context: dict[str, Any] = {
        "figures": {
            **members,
            "proposals": Figure(len(proposed)),
            "failed": Figure(len(failed), len(failed) >= COUNT_LIMIT),
        },
        "upcoming": upcoming,
    }
    return render(request, "start.html", context)

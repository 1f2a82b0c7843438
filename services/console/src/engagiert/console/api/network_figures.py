"""The network's figures for every signed-in user: the municipality beside the median, charts with tables, CSV."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from engagiert.console import clients
from engagiert.console import figures as fig
from engagiert.console.deps import CurrentTenant, CurrentUser, Services
from engagiert.console.errors import PageNotFound
from engagiert.console.i18n import Translator
from engagiert.console.rendering import render, request_language

router = APIRouter(prefix="/m/{ags}/network", tags=["network figures"])

YEARS_BACK = 2
"""The period selector offers the current year and this many before it."""
_PERIOD = re.compile(r"^[0-9]{4}$")


def _year(period: str | None) -> int:
    this = fig.current_year()
    if period and _PERIOD.match(period) and this - YEARS_BACK <= int(period) <= this:
        return int(period)
    return this


@dataclass(frozen=True, slots=True)
class _Page:
    """What every chart of the page shares: the texts, the language, the municipality's name, the year."""

    t: Translator
    lang: str
    tenant: str
    year: int


def _by_key(
    p: _Page,
    *,
    chart_id: str,
    name: str,
    own: clients.Figures | None,
    network: clients.NetworkFigures | None,
    group: str,
    label: Callable[[str, dict[str, str]], str],
) -> fig.Chart | None:
    """Return a chart of a broken-down figure (own value beside the network's median per key), or None.

    The keys and their order come from the services' ``keys`` (e.g. ``fields``); categories where
    both values are zero or missing are left out.
    """
    if own is None and network is None:
        return None
    values = fig.breakdown(own.figures if own else None, name)
    stats = network.network if network else {}
    labels = (network.keys if network else {}).get(group) or (own.keys if own else {}).get(group) or {}
    extra = [k for k in values if k not in labels]
    categories = [
        (label(k, labels), [values.get(k), fig.median(stats, name, k)])
        for k in (*labels, *extra)
        if values.get(k) or fig.median(stats, name, k)
    ]
    if not categories:
        return None
    return fig.bar_chart(
        chart_id=chart_id,
        title=p.t(f"figures.chart_{name}", year=p.year),
        desc=p.t("figures.chart_desc_by_key", name=p.tenant),
        categories=categories,
        series=[(p.tenant, "own"), (p.t("figures.network_median"), "median")],
        number=lambda v: fig.fmt(v, p.lang),
    )


def _over_time(
    p: _Page,
    *,
    chart_id: str,
    name: str,
    quarters: list[tuple[clients.Figures | None, clients.NetworkFigures | None]],
) -> fig.Chart | None:
    """Return a chart of a figure per quarter of ``year`` (own beside the network's median), or None."""
    if all(own is None and net is None for own, net in quarters):
        return None
    rate = name in fig.RATES
    categories = [
        (
            p.t("figures.quarter", quarter=q[1], year=p.year),
            [fig.scalar(own.figures if own else None, name), fig.median(net.network if net else None, name)],
        )
        for q, (own, net) in zip(fig.QUARTERS, quarters, strict=True)
    ]
    return fig.bar_chart(
        chart_id=chart_id,
        title=p.t(f"figures.chart_{name}_quarters", year=p.year),
        desc=p.t("figures.chart_desc_quarters", name=p.tenant),
        categories=categories,
        series=[(p.tenant, "own"), (p.t("figures.network_median"), "median")],
        number=lambda v: fig.fmt(v, p.lang, rate=rate),
    )


@router.get("", summary="The network's figures")
async def network_figures(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    period: str | None = Query(default=None, max_length=10),
) -> Response:
    """Show every municipality's figures (anonymised), charts per field and per quarter, each with its table."""
    year = _year(period)
    lang = request_language(request)
    t = Translator(lang)
    services = {"registry": api.registry, "events": api.events}
    calls: list[Any] = []
    for client in services.values():
        calls.append(fig.maybe(client.network_figures(period=str(year))))
        calls.append(fig.maybe(client.figures(tenant.ags, period=str(year))))
        for q in fig.QUARTERS:
            calls.append(fig.maybe(client.figures(tenant.ags, period=f"{year}-{q}")))
            calls.append(fig.maybe(client.network_figures(period=f"{year}-{q}")))
    answers = await asyncio.gather(*calls)
    per_service: dict[str, dict[str, Any]] = {}
    for i, source in enumerate(services):
        chunk = answers[i * 10 : (i + 1) * 10]
        per_service[source] = {
            "network": chunk[0],
            "own": chunk[1],
            "quarters": [(chunk[2 + 2 * n], chunk[3 + 2 * n]) for n in range(4)],
        }
    reg, ev = per_service["registry"], per_service["events"]
    page = _Page(t=t, lang=lang, tenant=tenant.name, year=year)
    charts = [
        _by_key(
            page,
            chart_id="members-by-field",
            name="members_by_field",
            own=reg["own"],
            network=reg["network"],
            group="fields",
            label=lambda k, labels: labels.get(k, k),
        ),
        _by_key(
            page,
            chart_id="hours-by-field",
            name="hours_by_field",
            own=reg["own"],
            network=reg["network"],
            group="fields",
            label=lambda k, labels: labels.get(k, k),
        ),
        _by_key(
            page,
            chart_id="members-by-age",
            name="members_by_age_band",
            own=reg["own"],
            network=reg["network"],
            group="age_bands",
            label=lambda k, labels: t(f"figures.age_{k}") if t.has(f"figures.age_{k}") else labels.get(k, k),
        ),
        _over_time(page, chart_id="members-new-quarters", name="members_new", quarters=reg["quarters"]),
        _over_time(page, chart_id="hours-quarters", name="hours_total", quarters=reg["quarters"]),
        _over_time(page, chart_id="events-quarters", name="events_held", quarters=ev["quarters"]),
    ]
    rows = fig.network_rows([reg["network"], ev["network"]], own=frozenset({tenant.ags}))
    size_classes = next(
        (per_service[s]["network"].keys.get("size_classes") for s in fig.SOURCES if per_service[s]["network"]), None
    )
    columns = [name for source in fig.SOURCES if per_service[source]["network"] for name in fig.SCALARS[source]]
    k = next((per_service[s]["network"].k for s in fig.SOURCES if per_service[s]["network"]), 5)
    context = {
        "year": year,
        "years": list(range(fig.current_year(), fig.current_year() - YEARS_BACK - 1, -1)),
        "charts": [c for c in charts if c is not None],
        "rows": rows,
        "columns": columns,
        "rates": fig.RATES,
        "k": k,
        "size_classes": size_classes,
        "missing": [s for s in fig.SOURCES if per_service[s]["network"] is None],
        "fmt": fig.fmt,
    }
    return render(request, "network_figures/index.html", context)


@router.get("/{source}.csv", summary="The network's figures as CSV")
async def network_figures_csv(
    source: str,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    period: str | None = Query(default=None, max_length=10),
) -> Response:
    """Pass the service's CSV of the network's figures through, as a download."""
    client = {"registry": api.registry, "events": api.events}.get(source)
    if client is None:
        raise PageNotFound
    year = _year(period)
    try:
        content = await client.network_figures_csv(period=str(year))
    except clients.NotFound:
        raise PageNotFound from None
    name = f"netzwerk-{source}-{year}.csv"
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )

"""Reads the figures of registry and events (issue 17) and prepares them for tables and inline SVG bar charts.

Both services answer the same shapes (``clients.Figures``, ``clients.NetworkFigures``). Until a
service offers the figures routes it answers 404; the pages then say so instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

from engagiert.console import clients

TZ = ZoneInfo("Europe/Berlin")
SOURCES: tuple[str, ...] = ("registry", "events")
SCALARS: dict[str, tuple[str, ...]] = {
    "registry": ("members_active", "members_new", "organisations", "hours_total"),
    "events": ("events_held", "attendance_rate", "invitations_accepted_rate", "cards_expiring"),
}
"""The single-number figures of each service, in the order the tables show them."""
RATES = frozenset({"attendance_rate", "invitations_accepted_rate"})
AGE_BANDS = ("under_18", "18_29", "30_49", "50_64", "65_plus", "unknown")
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
LOCALES = {"de": "de_DE", "en": "en_GB"}


def current_year() -> int:
    """Return the year it is in Germany."""
    return datetime.now(TZ).year


def fmt(value: float | None, lang: str, *, rate: bool = False) -> str:
    """Return a figure in the language's number format (Babel); a rate (0 to 1) as a percentage; None as "–"."""
    if value is None:
        return "–"
    locale = LOCALES.get(lang, "de_DE")
    if rate:
        return str(format_percent(value, format="#,##0.#\u00a0%", locale=locale))
    return str(format_decimal(value, format="#,##0.#", locale=locale))


async def maybe(call: Any) -> Any | None:
    """Await a figures call; None when the service does not offer the route yet (404) or does not answer."""
    try:
        return await call
    except (clients.NotFound, clients.Unavailable):
        return None


def scalar(figures: dict[str, clients.FigureValue] | None, name: str) -> float | None:
    """Return a single-number figure, or None when missing, suppressed or not a number."""
    value = (figures or {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def breakdown(figures: dict[str, clients.FigureValue] | None, name: str) -> dict[str, float | None]:
    """Return a figure broken down by key (``{field: n}``); suppressed cells stay None."""
    value = (figures or {}).get(name)
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) if isinstance(v, int | float) else None for k, v in value.items()}


def median(stats: dict[str, Any] | None, name: str, key: str | None = None) -> float | None:
    """Return the median of a figure (or of one key of a broken-down figure) from the ``network`` block.

    Accepts ``{name: {median}}``, ``{name: {key: {median}}}`` and ``{"name.key": {median}}``.
    """
    stats = stats or {}
    entry: Any = stats.get(name)
    if key is not None:
        entry = entry.get(key) if isinstance(entry, dict) and "median" not in entry else stats.get(f"{name}.{key}")
    if isinstance(entry, dict) and isinstance(entry.get("median"), int | float):
        return float(entry["median"])
    return None


# -- the network's table --------------------------------------------------------------------------


@dataclass
class Row:
    """One municipality in the network table: its label, kind, size class and figures of both services."""

    label: str
    ags: str | None
    named: bool
    kind: str | None
    size_class: str | None
    own: bool = False
    values: dict[str, float | None] = field(default_factory=dict)


def network_rows(answers: Sequence[clients.NetworkFigures | None], *, own: frozenset[str]) -> list[Row]:
    """Merge the two services' rows (by key, or by label for unnamed ones) with their single-number figures."""
    rows: dict[str, Row] = {}
    for answer in answers:
        if answer is None:
            continue
        for m in answer.municipalities:
            key = m.ags or f"label:{m.label}"
            row = rows.setdefault(
                key,
                Row(label=m.label, ags=m.ags, named=m.named, kind=m.kind, size_class=m.size_class),
            )
            row.own = row.own or (m.ags is not None and m.ags in own)
            for name in SCALARS.get(answer.source, ()):
                row.values[name] = scalar(m.figures, name)
    return sorted(rows.values(), key=lambda r: (not r.own, r.label.casefold()))


# -- charts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """A bar of a chart, in the SVG's user units."""

    x: float
    y: float
    width: float
    height: float
    css: str
    text: str
    text_x: float


@dataclass(frozen=True, slots=True)
class Group:
    """One category of a chart: its label, its bars and its table row."""

    label: str
    label_y: float
    bars: list[Bar]
    cells: list[str]


@dataclass(frozen=True, slots=True)
class Chart:
    """A horizontal grouped bar chart with the table beside it that says the same."""

    chart_id: str
    title: str
    desc: str
    series: list[tuple[str, str]]
    groups: list[Group]
    width: int
    height: int
    label_width: int


CHART_WIDTH = 480
LABEL_WIDTH = 130
BAR_HEIGHT = 14
GROUP_GAP = 12


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[tuple[str, str]],
    number: Callable[[float | None], str],
) -> Chart:
    """Return a chart of ``categories`` (label, one value per series); a missing value draws no bar and reads "–"."""
    top = max([v for _, values in categories for v in values if v is not None] or [0.0]) or 1.0
    plot = CHART_WIDTH - LABEL_WIDTH - 50
    groups: list[Group] = []
    y = 4.0
    for label, values in categories:
        bars = []
        for i, value in enumerate(values):
            width = 0.0 if value is None else max(plot * value / top, 1.0 if value else 0.0)
            bar_y = y + i * BAR_HEIGHT
            bars.append(
                Bar(
                    x=LABEL_WIDTH,
                    y=bar_y,
                    width=round(width, 1),
                    height=BAR_HEIGHT - 2,
                    css=series[i][1],
                    text=number(value),
                    text_x=round(LABEL_WIDTH + width + 4, 1),
                )
            )
        height = BAR_HEIGHT * len(values)
        groups.append(Group(label=label, label_y=y + height / 2 + 4, bars=bars, cells=[number(v) for v in values]))
        y += height + GROUP_GAP
    return Chart(
        chart_id=chart_id,
        title=title,
        desc=desc,
        series=list(series),
        groups=groups,
        width=CHART_WIDTH,
        height=int(y),
        label_width=LABEL_WIDTH,
    )

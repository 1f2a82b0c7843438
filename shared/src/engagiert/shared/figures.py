"""Shapes the figures that registry and events serve: periods, keys, a municipality's answer, the network's answer.

Each service computes its own raw figures (``Count``, ``Amount``, ``Rate``, ``Breakdown``) and
hands them here: :func:`municipality_answer` shows them as they are to the municipality itself,
:func:`network_answer` anonymises every municipality's row (``engagiert.shared.anonymity``), adds
the network's median and quartiles and those of each kind, and names only the municipalities that
agreed to be named. :func:`network_csv` writes the same table as CSV. See docs/network-figures.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time as clock
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Query, Request

from engagiert.shared.anonymity import Cell, K, suppress_breakdown, suppress_count, suppress_rate
from engagiert.shared.auth import Principal, Reader, require
from engagiert.shared.csvfiles import CsvDialect, csv_response, write_csv
from engagiert.shared.problems import Problem

# -- periods --------------------------------------------------------------------------------------

_PERIOD = re.compile(r"([0-9]{4})(?:-Q([1-4]))?")
FIRST_YEAR, LAST_YEAR = 2000, 2100
PERIOD_QUERY = Query(
    description="a year ('2026') or a quarter ('2026-Q4'); default: the current year",
    max_length=7,
)


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar year or quarter, both ends included."""

    label: str
    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        """Return the first instant of the period (UTC)."""
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """Return the first instant after the period (UTC)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


def parse_period(text: str | None, *, today: date) -> Period:
    """Return the period named by ``text`` (default: the year of ``today``); a 422 problem when malformed."""
    if not text:
        text = str(today.year)
    found = _PERIOD.fullmatch(text)
    if found is None or not FIRST_YEAR <= int(found.group(1)) <= LAST_YEAR:
        raise Problem(
            422,
            "Invalid period",
            f"give a year ({FIRST_YEAR}-{LAST_YEAR}) such as '2026' or a quarter such as '2026-Q4'",
        )
    year = int(found.group(1))
    if found.group(2) is None:
        return Period(text, date(year, 1, 1), date(year, 12, 31))
    quarter = int(found.group(2))
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period(text, start, end - timedelta(days=1))


# -- keys -----------------------------------------------------------------------------------------

AGE_BANDS: dict[str, str] = {
    "under_18": "unter 18",
    "18_29": "18-29",
    "30_49": "30-49",
    "50_64": "50-64",
    "65_plus": "65+",
    "unknown": "unbekannt",
}
"""Age bands: stable ASCII key -> German label (the console translates)."""

FIELDS: dict[str, str] = {
    "sport": "Sport",
    "kultur": "Kultur",
    "soziales": "Soziales",
    "umwelt": "Umwelt",
    "feuerwehr_katastrophenschutz": "Feuerwehr/Katastrophenschutz",
    "kirche": "Kirche",
    "bildung": "Bildung",
    "jugendarbeit": "Jugendarbeit",
    "gesundheit": "Gesundheit",
    "sonstiges": "Sonstiges",
    "unknown": "unbekannt",
}
"""Fields of engagement: stable ASCII key -> the contracts' German name."""
FIELD_KEYS: dict[str, str] = {label: key for key, label in FIELDS.items() if key != "unknown"}
"""The contracts' field name -> its key."""

SIZE_CLASSES: dict[str, str] = {
    "under_10k": "unter 10.000 Einw.",
    "10k_20k": "10.000–20.000 Einw.",
    "20k_50k": "20.000–50.000 Einw.",
    "50k_100k": "50.000–100.000 Einw.",
    "100k_500k": "100.000–500.000 Einw.",
    "500k_plus": "über 500.000 Einw.",
    "unknown": "Größe unbekannt",
}
"""Size classes by inhabitants: key -> German label."""
_SIZE_BOUNDS = ((10_000, "under_10k"), (20_000, "10k_20k"), (50_000, "20k_50k"), (100_000, "50k_100k"))


def age_band(date_of_birth: date | None, *, on: date) -> str:
    """Return the age band key of someone born on ``date_of_birth``, as old as they are on ``on``."""
    if date_of_birth is None:
        return "unknown"
    age = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    if age < 18:
        return "under_18"
    if age < 30:
        return "18_29"
    if age < 50:
        return "30_49"
    if age < 65:
        return "50_64"
    return "65_plus"


def size_class(inhabitants: int | None) -> str:
    """Return the size class key of a municipality with ``inhabitants``."""
    if inhabitants is None:
        return "unknown"
    for bound, key in _SIZE_BOUNDS:
        if inhabitants < bound:
            return key
    return "100k_500k" if inhabitants < 500_000 else "500k_plus"


def main_field(engagements: Iterable[Mapping[str, Any]], *, on: date) -> str:
    """Return the key of a member's main field on ``on``: their longest-running open engagement's field.

    Without an engagement open on ``on``, the field of the one that ended last (by then); without
    any, ``unknown``. Every member has exactly one main field, so breakdowns by field add up.
    """
    day = on.isoformat()
    started = [e for e in engagements if str(e.get("since") or "") <= day and e.get("field") in FIELD_KEYS]
    open_ = [e for e in started if not e.get("until") or str(e["until"]) >= day]
    if open_:
        chosen = min(open_, key=lambda e: (str(e.get("since")), str(e.get("field"))))
    elif started:
        chosen = max(started, key=lambda e: (str(e.get("until")), str(e.get("field"))))
    else:
        return "unknown"
    return FIELD_KEYS[str(chosen["field"])]


# -- raw figures ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    """A number of people, events or things (suppressed below k)."""

    value: int


@dataclass(frozen=True, slots=True)
class Amount:
    """A sum (hours) and how many people contributed to it (suppressed below k contributors)."""

    value: float
    people: int


@dataclass(frozen=True, slots=True)
class Rate:
    """A share: numerator over denominator (suppressed when the denominator is below k)."""

    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Cells that add up to the figure named ``total`` (None: no total, or not additive)."""

    cells: Mapping[str, Count | Amount]
    total: str | None = None


Figure = Count | Amount | Rate | Breakdown
Value = float | int | None | dict[str, float | int | None]


def _plain(figure: Figure) -> Value:
    if isinstance(figure, Breakdown):
        return {key: _plain_number(cell) for key, cell in figure.cells.items()}
    return _plain_number(figure)


def _plain_number(figure: Count | Amount | Rate) -> float | int | None:
    if isinstance(figure, Count):
        return figure.value
    if isinstance(figure, Amount):
        return round(figure.value, 2)
    return round(figure.numerator / figure.denominator, 4) if figure.denominator else None


def _cell(figure: Count | Amount) -> Cell:
    if isinstance(figure, Count):
        return Cell(value=figure.value, people=figure.value)
    return Cell(value=round(figure.value, 2), people=figure.people)


def anonymise(figures: Mapping[str, Figure], *, k: int = K) -> dict[str, Value]:
    """Return figures as the network sees them: small cells suppressed, suppressed cells not derivable."""
    out: dict[str, Value] = {}
    for name, figure in figures.items():
        if isinstance(figure, Count):
            out[name] = suppress_count(figure.value, k=k)
        elif isinstance(figure, Amount):
            out[name] = round(figure.value, 2) if figure.people >= k else None
        elif isinstance(figure, Rate):
            out[name] = suppress_rate(figure.numerator, figure.denominator, k=k)
    for name, figure in figures.items():
        if isinstance(figure, Breakdown):
            total_published = figure.total is not None and out.get(figure.total) is not None
            cells = {key: _cell(cell) for key, cell in figure.cells.items()}
            out[name] = suppress_breakdown(cells, total_published=total_published, k=k)
    return out


# -- answers ----------------------------------------------------------------------------------------

Source = Literal["registry", "events"]


@dataclass(frozen=True, slots=True)
class MunicipalityInfo:
    """What the network answer shows of a municipality besides its figures."""

    ags: str
    name: str
    kind: str
    inhabitants: int | None = None
    named: bool = True


@dataclass(kw_only=True)
class MunicipalityFigures:
    """One municipality's raw figures for a period."""

    municipality: MunicipalityInfo
    figures: dict[str, Figure] = field(default_factory=dict)


def municipality_answer(*, ags: str, period: Period, source: Source, figures: Mapping[str, Figure]) -> dict[str, Any]:
    """Return a municipality's own figures (unsuppressed: they are its own data)."""
    return {
        "municipality": ags,
        "period": period.label,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "source": source,
        "figures": {name: _plain(figure) for name, figure in figures.items()},
        "keys": KEY_LABELS,
    }


KEY_LABELS: dict[str, dict[str, str]] = {"age_bands": AGE_BANDS, "fields": FIELDS, "size_classes": SIZE_CLASSES}
"""The German labels of the breakdowns' keys, for clients that show them."""


def _label(info: MunicipalityInfo) -> str:
    if info.named:
        return info.name
    return f"{info.kind}, {SIZE_CLASSES[size_class(info.inhabitants)]}"


def _stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return n, median and quartiles of published values (None each when fewer than k values)."""
    if len(values) < K:
        return {"n": len(values), "median": None, "q1": None, "q3": None}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"n": len(values), "median": round(median, 4), "q1": round(q1, 4), "q3": round(q3, 4)}


def _summary(rows: Sequence[Mapping[str, Value]]) -> dict[str, Any]:
    """Return the median and quartiles of each figure (each breakdown cell) over the published values."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys(name for row in rows for name in row))
    for name in names:
        values = [row.get(name) for row in rows]
        if any(isinstance(v, dict) for v in values):
            keys = list(dict.fromkeys(key for v in values if isinstance(v, dict) for key in v))
            out[name] = {
                key: _stats([float(c) for v in values if isinstance(v, dict) and (c := v.get(key)) is not None])
                for key in keys
            }
        else:
            out[name] = _stats([float(v) for v in values if isinstance(v, int | float)])
    return out


def network_answer(*, period: Period, source: Source, rows: Sequence[MunicipalityFigures]) -> dict[str, Any]:
    """Return the network's figures: every municipality anonymised, the network's and each kind's quartiles.

    A municipality that chose not to be named shows no AGS and a label of kind and size class,
    and the rows are sorted by label (then by their figures), so their order tells nothing either.
    """
    shown: list[dict[str, Any]] = []
    for row in rows:
        info = row.municipality
        shown.append(
            {
                "label": _label(info),
                "ags": info.ags if info.named else None,
                "named": info.named,
                "kind": info.kind,
                "size_class": size_class(info.inhabitants),
                "figures": anonymise(row.figures),
            }
        )
    shown.sort(key=lambda r: (r["label"], json.dumps(r["figures"], sort_keys=True), r["ags"] or ""))
    kinds = sorted({r["kind"] for r in shown})
    return {
        "period": period.label,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "source": source,
        "k": K,
        "municipalities": shown,
        "network": _summary([r["figures"] for r in shown]),
        "same_kind": {kind: _summary([r["figures"] for r in shown if r["kind"] == kind]) for kind in kinds},
        "keys": KEY_LABELS,
    }


class NetworkCache:
    """Keeps each period's network answer for ``seconds``, computed once even when asked for concurrently.

    The network's figures read every member and hours entry of every municipality; they are a
    comparison across the network, not a live count, so an answer a few minutes old is what a
    reader expects, and the JSON, the CSV and the console's pages share one computation.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Return the kept answer for ``key`` while fresh, else compute, keep and return it."""
        if self.seconds <= 0:
            return await compute()
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            kept = self._answers.get(key)
            if kept is not None and clock.monotonic() - kept[0] < self.seconds:
                return kept[1]
            answer = await compute()
            self._answers[key] = (clock.monotonic(), answer)
            return answer


def network_csv(answer: Mapping[str, Any], *, dialect: CsvDialect = "excel-de") -> bytes:
    """Return the network answer as CSV: one row per municipality, then the network's median and quartiles.

    Columns: label, ags, named, kind, size_class, then one per figure (``name`` or ``name.key``);
    a suppressed cell is empty.
    """
    rows = answer["municipalities"]
    comma = dialect == "excel-de"
    columns: list[str] = []
    for row in rows:
        for name, value in row["figures"].items():
            for column in [f"{name}.{key}" for key in value] if isinstance(value, dict) else [name]:
                if column not in columns:
                    columns.append(column)
    out: list[dict[str, Any]] = []
    for row in rows:
        line: dict[str, Any] = {
            "label": row["label"],
            "ags": row["ags"] or "",
            "named": "ja" if row["named"] else "nein",
            "kind": row["kind"],
            "size_class": row["size_class"],
        }
        for name, value in row["figures"].items():
            if isinstance(value, dict):
                line.update({f"{name}.{key}": _csv_number(v, comma=comma) for key, v in value.items()})
            else:
                line[name] = _csv_number(value, comma=comma)
        out.append(line)
    for stat, label in (("median", "Netzwerk: Median"), ("q1", "Netzwerk: 1. Quartil"), ("q3", "Netzwerk: 3. Quartil")):
        line = {"label": label}
        for name, summary in answer["network"].items():
            if "n" in summary:
                line[name] = _csv_number(summary[stat], comma=comma)
            else:
                line.update({f"{name}.{key}": _csv_number(s[stat], comma=comma) for key, s in summary.items()})
        out.append(line)
    return write_csv(out, fieldnames=["label", "ags", "named", "kind", "size_class", *columns], dialect=dialect)


def _csv_number(value: Any, *, comma: bool) -> str:
    """Return a number as a cell: empty when suppressed, with a decimal comma for German Excel."""
    if value is None:
        return ""
    return str(value).replace(".", ",") if comma else str(value)


def wants_csv(request: Request, format_: str | None) -> bool:
    """Return whether the caller asked for CSV (``?format=csv`` or ``Accept: text/csv``)."""
    if format_ is not None:
        return format_ == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}
}
"""The OpenAPI answer of a route that answers JSON or CSV."""

CSV_DIALECT_QUERY = Query(
    description="the CSV's dialect: excel-de (default here: semicolons, UTF-8 with BOM, decimal comma) or rfc4180"
)

FormatQuery = Annotated[
    Literal["json", "csv"] | None, Query(alias="format", description="json (default) or csv (also: Accept: text/csv)")
]


# -- the routes -----------------------------------------------------------------------------------


NetworkMember = Annotated[Principal, Depends(require("reader"))]
"""A route parameter: any signed-in member of the network (staff or reader of any municipality, network-admin)."""


class FiguresSource(Protocol):
    """What a service's figures use case offers the routes."""

    @property
    def clock(self) -> Callable[[], datetime]:
        """Return the use case's clock."""
        ...

    async def of_municipality(self, ags: str, period: Period) -> dict[str, Any]:
        """Return the municipality's own figures (a problem when the caller may not see them)."""
        ...

    async def of_network(self, period: Period) -> dict[str, Any]:
        """Return every municipality's figures, anonymised, with the network's quartiles."""
        ...


def figures_router(
    service: str,
    source: Callable[..., FiguresSource],
    *,
    guard: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
) -> APIRouter:
    """Return the routes of a service's figures: ``/v1/municipalities/{ags}/figures`` and ``/v1/network/figures``.

    ``source`` is a FastAPI dependency giving the service's figures use case; ``guard`` wraps the
    municipality's call (a service's mapping of its domain errors to problems).
    """
    router = APIRouter(tags=["figures"])
    # (Annotations are strings here, which FastAPI resolves in this module's globals, not in this
    # function: the dependency on ``source`` is therefore given as a default.)

    @router.get("/v1/municipalities/{ags}/figures", summary=f"A municipality's {service} figures for a year or quarter")
    async def municipality_figures(
        ags: str,
        _p: Reader,
        figures: FiguresSource = Depends(source),
        period: Annotated[str | None, PERIOD_QUERY] = None,
    ) -> dict[str, Any]:
        parsed = parse_period(period, today=figures.clock().date())
        async with guard():
            return await figures.of_municipality(ags, parsed)

    @router.get(
        "/v1/network/figures",
        summary=f"Every municipality's {service} figures, anonymised (k=5), with the network's quartiles (JSON or CSV)",
        responses=CSV_RESPONSE,
    )
    async def network_figures(
        request: Request,
        _p: NetworkMember,
        figures: FiguresSource = Depends(source),
        period: Annotated[str | None, PERIOD_QUERY] = None,
        format_: FormatQuery = None,
        dialect: Annotated[CsvDialect, CSV_DIALECT_QUERY] = "excel-de",
    ) -> Any:
        parsed = parse_period(period, today=figures.clock().date())
        answer = await figures.of_network(parsed)
        if wants_csv(request, format_):
            body = network_csv(answer, dialect=dialect)
            return csv_response(body, filename=f"network-figures-{service}-{parsed.label}.csv")
        return answer

    return router


__all__ = [
    "AGE_BANDS",
    "CSV_DIALECT_QUERY",
    "CSV_RESPONSE",
    "FIELDS",
    "FIELD_KEYS",
    "KEY_LABELS",
    "PERIOD_QUERY",
    "SIZE_CLASSES",
    "Amount",
    "Breakdown",
    "Count",
    "Figure",
    "FiguresSource",
    "FormatQuery",
    "MunicipalityFigures",
    "MunicipalityInfo",
    "NetworkCache",
    "Period",
    "Rate",
    "age_band",
    "anonymise",
    "figures_router",
    "main_field",
    "municipality_answer",
    "network_answer",
    "network_csv",
    "parse_period",
    "size_class",
    "wants_csv",
]

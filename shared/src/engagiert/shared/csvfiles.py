"""Writes CSV exports that spreadsheets open safely: formula cells neutralised, a dialect for German Excel.

- Every cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
  leading apostrophe (the OWASP rule against CSV injection): Excel and LibreOffice show it as
  text instead of running ``=HYPERLINK(...)`` or ``+cmd|...``. The import undoes exactly this
  (:func:`restore_cell`), so an export imports back to the same data.
- ``dialect=excel-de``: semicolons and UTF-8 with a byte order mark, which German Excel opens
  with umlauts intact by a double click; the default is RFC 4180 (commas, UTF-8 without BOM).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from fastapi import Query, Response

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""

CsvDialect = Literal["rfc4180", "excel-de"]
DIALECT_QUERY = Query(
    description="rfc4180 (default: commas, UTF-8) or excel-de (semicolons, UTF-8 with BOM, for German Excel)"
)
BOM = "\ufeff"


def neutralise_cell(value: Any) -> str:
    """Return ``value`` as a cell that a spreadsheet never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def restore_cell(value: str) -> str:
    """Undo :func:`neutralise_cell` on an imported cell; every other cell stays as given."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS) else value


def write_csv(
    rows: Iterable[Mapping[str, Any]], *, fieldnames: Sequence[str], dialect: CsvDialect = "rfc4180"
) -> bytes:
    """Return ``rows`` as CSV bytes in ``dialect`` with every cell neutralised."""
    out = io.StringIO()
    if dialect == "excel-de":
        out.write(BOM)
    writer = csv.writer(out, delimiter=";" if dialect == "excel-de" else ",", lineterminator="\r\n")
    writer.writerow(fieldnames)
    for row in rows:
        writer.writerow([neutralise_cell(row.get(name)) for name in fieldnames])
    return out.getvalue().encode("utf-8")


def csv_response(body: bytes, *, filename: str) -> Response:
    """Return ``body`` as a CSV download named ``filename``."""
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )

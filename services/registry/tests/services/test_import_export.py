"""Proves the CSV import on 10,000 rows: the dry run finds exactly the bad rows, imports are idempotent."""

from __future__ import annotations

import csv
import io
import time

import pytest

from engagiert.registry.services.import_export import CSV_COLUMNS

from ..conftest import PADERBORN, READER_PB, STAFF_PB, Registry

pytestmark = pytest.mark.integration

ROWS = 10_000
BAD = {1234: "email", 5000: "date_of_birth", 9999: "field"}
"""Row index -> the column made invalid."""


def _csv(bad: bool) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    for i in range(ROWS):
        row = {
            "given_name": f"Vorname{i}",
            "family_name": f"Nachname{i % 97}",
            "email": f"person{i}@example.org",
            "phone": "",
            "date_of_birth": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}",
            "street": f"Westernstraße {1 + i % 80}",
            "postal_code": "33098",
            "city": "Paderborn",
            "language": "de",
            "consent_channels": "email;post" if i % 3 else "",
            "organisation_id": "",
            "field": "Sport" if i % 2 else "Kultur",
            "role": "Helfer",
            "since": "2019-05-01",
        }
        if bad and i in BAD:
            row[BAD[i]] = {"email": "kein-at-zeichen", "date_of_birth": "31.02.1980", "field": "Schach"}[BAD[i]]
        writer.writerow(row)
    return out.getvalue().encode()


async def test_ten_thousand_rows_dry_run_import_and_reimport(registry: Registry) -> None:
    """3 bad rows of 10,000: dry run names exactly them, the import refuses the file; the valid file imports once."""
    c = registry.client
    url = f"/v1/municipalities/{PADERBORN}/members/import"
    bad_file = _csv(bad=True)
    dry = await c.post(
        url, params={"dry_run": "true"}, files={"file": ("m.csv", bad_file, "text/csv")}, headers=STAFF_PB
    )
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["rows"] == ROWS
    assert sorted(e["line"] for e in report["errors"]) == sorted(i + 2 for i in BAD)
    assert all(e["errors"] for e in report["errors"])
    assert "kein-at-zeichen" not in dry.text, "errors name the field, not the value"

    refused = await c.post(url, files={"file": ("m.csv", bad_file, "text/csv")}, headers=STAFF_PB)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert len(refused.json()["errors"]) == 3
    assert await registry.db["members"].count_documents({}) == 0

    good_file = _csv(bad=False)
    started = time.perf_counter()
    first = await c.post(url, files={"file": ("m.csv", good_file, "text/csv")}, headers=STAFF_PB)
    took = time.perf_counter() - started
    assert first.status_code == 200, first.text
    assert first.json()["created"] == ROWS
    print(f"imported {ROWS} rows in {took:.1f}s")
    second = await c.post(url, files={"file": ("m.csv", good_file, "text/csv")}, headers=STAFF_PB)
    assert second.json()["created"] == 0
    assert second.json()["skipped_existing"] == ROWS
    assert await registry.db["members"].count_documents({"municipality": PADERBORN}) == ROWS

    export = await c.get(f"/v1/municipalities/{PADERBORN}/members.csv", headers=READER_PB)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    exported = list(csv.DictReader(io.StringIO(export.text)))
    assert len(exported) == ROWS

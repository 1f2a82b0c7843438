"""The member CSV is safe to open: formula cells are text, German Excel reads it, big files do not block."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from engagiert.registry.services.import_export import CSV_COLUMNS
from engagiert.shared.csvfiles import neutralise_cell, restore_cell

from ..conftest import PADERBORN, READER_PB, STAFF_PB, Registry

pytestmark = pytest.mark.integration

IMPORT = f"/v1/municipalities/{PADERBORN}/members/import"
EXPORT = f"/v1/municipalities/{PADERBORN}/members.csv"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1+2"]


def _csv(rows: list[dict[str, str]], *, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), delimiter=delimiter)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def test_the_owasp_rule_neutralises_every_trigger_and_the_import_undoes_only_that() -> None:
    """= + - @ tab and CR get an apostrophe; restore_cell undoes exactly that and leaves other cells as given."""
    for text in ["=1", "+1", "-1", "@x", "\tx", "\rx"]:
        assert neutralise_cell(text) == "'" + text
        assert restore_cell(neutralise_cell(text)) == text
    assert neutralise_cell("Müller") == "Müller"
    assert restore_cell("'Tis") == "'Tis"
    assert restore_cell("\t=1+2") == "\t=1+2"


async def test_exported_formula_cells_are_text(registry: Registry) -> None:
    """Names that are formulas come back in members.csv with a leading apostrophe, and import back unchanged."""
    c = registry.client
    rows = [
        {"given_name": f, "family_name": f"Formel{i}", "date_of_birth": "1980-01-01"} for i, f in enumerate(FORMULAS)
    ]
    r = await c.post(IMPORT, files={"file": ("f.csv", _csv(rows), "text/csv")}, headers=STAFF_PB)
    assert r.status_code == 200, r.text
    export = await c.get(EXPORT, headers=READER_PB)
    exported = {row["family_name"]: row for row in csv.DictReader(io.StringIO(export.text))}
    for i in range(len(FORMULAS)):
        cell = exported[f"Formel{i}"]["given_name"]
        assert cell.startswith("'"), cell
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    again = await c.post(
        IMPORT, params={"dry_run": "true"}, files={"file": ("e.csv", export.content, "text/csv")}, headers=STAFF_PB
    )
    assert again.json()["skipped_existing"] == len(FORMULAS), again.text


async def test_the_german_excel_dialect_has_a_bom_semicolons_and_intact_umlauts(registry: Registry) -> None:
    """?dialect=excel-de: UTF-8 with BOM, semicolons, CRLF; Jürgen Größmann-Çelik reads back intact."""
    c = registry.client
    rows = [
        {
            "given_name": "Jürgen",
            "family_name": "Größmann-Çelik",
            "street": "Schloßstraße 1",
            "postal_code": "33104",
            "city": "Paderborn; Schloß Neuhaus",
        }
    ]
    made = await c.post(IMPORT, files={"file": ("u.csv", _csv(rows), "text/csv")}, headers=STAFF_PB)
    assert made.is_success, made.text
    r = await c.get(EXPORT, params={"dialect": "excel-de"}, headers=READER_PB)
    assert r.content.startswith("\ufeff".encode())
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("member_id;given_name;family_name;")
    assert "\r\n" in text
    row = next(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert (row["given_name"], row["family_name"], row["city"]) == (
        "Jürgen",
        "Größmann-Çelik",
        "Paderborn; Schloß Neuhaus",
    )
    default = await c.get(EXPORT, headers=READER_PB)
    assert not default.content.startswith("\ufeff".encode())
    assert default.text.splitlines()[0].startswith("member_id,given_name,")


async def test_the_same_name_in_nfc_nfd_or_with_invisible_characters_is_one_person(registry: Registry) -> None:
    """José Müller in NFC, in NFD and with a zero-width space and a soft hyphen: duplicates; search finds all forms."""
    c = registry.client
    nfc = {"given_name": "José", "family_name": "Müller", "date_of_birth": "1970-04-01"}
    nfd = {k: unicodedata.normalize("NFD", v) for k, v in nfc.items()}
    hidden = {**nfc, "given_name": "Jo\u200bsé", "family_name": "Mül\u00adler"}
    r = await c.post(IMPORT, params={"dry_run": "true"}, files={"file": ("d.csv", _csv([nfc, nfd, hidden]), "text/csv")}, headers=STAFF_PB)  # fmt: skip
    errors = r.json()["errors"]
    assert [e["line"] for e in errors] == [3, 4], r.text
    assert all("the same person as line 2" in e["errors"][0] for e in errors)
    made = await c.post(f"/v1/municipalities/{PADERBORN}/members", json=nfd, headers=STAFF_PB)
    assert made.status_code == 201, made.text
    again = await c.post(f"/v1/municipalities/{PADERBORN}/members", json=hidden, headers=STAFF_PB)
    assert again.status_code == 409, again.text
    found = await c.get(f"/v1/municipalities/{PADERBORN}/members", params={"name": "josé müller"}, headers=READER_PB)
    assert [m["member_id"] for m in found.json()["items"]] == [made.json()["member_id"]]


async def test_an_overlong_field_and_a_bare_cr_are_row_errors_and_the_list_is_bounded(registry: Registry) -> None:
    """A 200,000-character field is a row error, not a 500; 5,000 bad rows answer 100 errors and error_count 5000."""
    c = registry.client
    long_field = b"given_name,family_name\nAnna,Test\n" + b'"' + b"A" * 200_000 + b'",B\n'
    r = await c.post(IMPORT, params={"dry_run": "true"}, files={"file": ("l.csv", long_field, "text/csv")}, headers=STAFF_PB)  # fmt: skip
    assert r.status_code == 200, r.text
    assert "cannot be read" in r.json()["errors"][0]["errors"][0]
    bare_cr = b"given_name,family_name\rAnna,Test\r"
    r = await c.post(IMPORT, params={"dry_run": "true"}, files={"file": ("c.csv", bare_cr, "text/csv")}, headers=STAFF_PB)  # fmt: skip
    assert r.status_code < 500, r.text
    bad = _csv([{"given_name": f"N{i}", "family_name": "X", "email": "kein-at"} for i in range(5000)])
    r = await c.post(IMPORT, params={"dry_run": "true"}, files={"file": ("b.csv", bad, "text/csv")}, headers=STAFF_PB)
    body = r.json()
    assert (len(body["errors"]), body["error_count"], body["rows"]) == (100, 5000, 5000)

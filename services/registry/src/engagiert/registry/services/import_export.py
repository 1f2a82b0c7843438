"""Owns the member CSV: parse, validate, import in bulk and export."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import ValidationError

from engagiert.registry import domain
from engagiert.registry.domain import MemberCreate
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import UseCases
from engagiert.registry.services.members import Members
from engagiert.registry.services.municipalities import Municipalities
from engagiert.shared.csvfiles import CsvDialect, restore_cell, write_csv
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.shredding import MemberKey

log = get_logger(__name__)


CSV_COLUMNS = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "date_of_birth",
    "street",
    "postal_code",
    "city",
    "language",
    "consent_channels",
    "organisation_id",
    "field",
    "role",
    "since",
)
"""The columns of the member CSV (import and export); ``consent_channels`` separated by ``;``."""


PREVIOUSLY_ERASED = (
    "row: this person was erased from the register (DSGVO Art. 17); if they asked to come back, "
    "staff register them over the API with allow_previously_erased=true"
)

MAX_REPORTED_ERRORS = 100
"""The most row errors an import answers with (``error_count`` says how many there were)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """The problems of one CSV row (line numbers count the header as line 1)."""

    line: int
    errors: list[str]


@dataclass(slots=True)
class ImportReport:
    """What an import did or would do."""

    rows: int
    errors: list[RowError]
    error_count: int = 0
    created: int = 0
    skipped_existing: int = 0
    dry_run: bool = True


@dataclass(kw_only=True)
class ImportExport(UseCases):
    """Runs the CSV use cases; imported members are registered with the members' facts."""

    municipalities: Municipalities
    members: Members

    def parse_csv(self, ags: str, content: bytes) -> tuple[list[tuple[int, MemberCreate, str]], list[RowError]]:
        """Read a member CSV: valid rows (line, member, import key) and row errors."""
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [], [RowError(line=0, errors=["the file is not UTF-8"])]
        header = text.split("\n", 1)[0]
        delimiter = ";" if header.count(";") > header.count(",") else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        missing = [c for c in ("given_name", "family_name") if c not in (reader.fieldnames or [])]
        if missing:
            return [], [RowError(line=1, errors=[f"missing columns: {', '.join(missing)}"])]
        rows: list[tuple[int, MemberCreate, str]] = []
        errors: list[RowError] = []
        first_line: dict[str, int] = {}
        number = 1
        rows_read = iter(reader)
        while True:
            number = reader.line_num + 1
            try:
                row = next(rows_read)
            except StopIteration:
                break
            except csv.Error as exc:
                # The reader cannot go on after this (an overlong field, a broken quote): stop here.
                errors.append(RowError(line=number, errors=[f"the CSV cannot be read from here on: {exc}"]))
                break
            # Cells are taken as given (no stripping: a leading tab is data); only the export's
            # neutralising apostrophe is undone, so that an export imports back unchanged.
            clean = {k: restore_cell(v or "") for k, v in row.items() if isinstance(k, str) and k}
            try:
                member = _member_from_row(clean)
            except ValidationError as exc:
                errors.append(RowError(line=number, errors=_messages(exc)))
                continue
            except ValueError as exc:
                errors.append(RowError(line=number, errors=[str(exc)]))
                continue
            key = _import_key(ags, clean)
            keys = [key]
            if (ek := domain.email_key(member.contact.email)) is not None:
                keys.append("e:" + ek)
            if (nk := domain.name_dob_key(member.given_name, member.family_name, member.date_of_birth)) is not None:
                keys.append("n:" + nk)
            clash = next((first_line[k] for k in keys if k in first_line), None)
            if clash is not None:
                errors.append(RowError(line=number, errors=[f"the same person as line {clash}"]))
                continue
            for k in keys:
                first_line[k] = number
            rows.append((number, member, key))
        return rows, errors

    async def import_csv(self, ags: str, content: bytes, *, dry_run: bool) -> ImportReport:
        """Validate a member CSV and, unless a dry run, import it; rows of known people are skipped."""
        await self.municipalities.municipality(ags)
        emails, names, imports = await self.repo.duplicate_keys(ags)
        erased = await self.repo.erased_marks_of(ags)
        report = ImportReport(rows=0, errors=[], dry_run=dry_run)
        now = self.clock()

        def prepare() -> tuple[list[tuple[Doc, Sequence[OutgoingRecord]]], int]:
            # All of it in a worker thread: parsing a 20 MB file takes a minute of CPU, and even
            # freeing its 150,000 rows' objects would stop the event loop for seconds.
            rows, errors = self.parse_csv(ags, content)
            report.rows = len(rows) + len(errors)
            fresh: list[tuple[MemberCreate, str]] = []
            for line, member, key in rows:
                ek = domain.email_key(member.contact.email)
                nk = domain.name_dob_key(member.given_name, member.family_name, member.date_of_birth)
                identity = domain.identity_keys(email=ek, name_dob=nk)
                if key in imports or (ek and ek in emails) or (nk and nk in names):
                    report.skipped_existing += 1
                elif erased and erased.intersection(self.erased_marks(ags, identity)):
                    errors.append(RowError(line=line, errors=[PREVIOUSLY_ERASED]))
                else:
                    fresh.append((member, key))
            errors.sort(key=lambda e: e.line)
            report.error_count = len(errors)
            report.errors = errors[:MAX_REPORTED_ERRORS]
            if dry_run or errors:
                return [], len(fresh)
            docs: list[tuple[Doc, Sequence[OutgoingRecord]]] = []
            for member, key in fresh:
                doc = domain.member_document(
                    member_id=domain.stable_id("m", ags, key),
                    ags=ags,
                    data=member,
                    engagements=domain.engagements_from(member.engagements),
                    consent=domain.consent_from(member.consent, now=now),
                    now=now,
                )
                doc["import_key"] = key
                docs.append((doc, []))
            return docs, len(fresh)

        docs, fresh_count = await asyncio.to_thread(prepare)
        if dry_run or report.error_count:
            return report
        # Keys first (a member's records are sealed with it), then the records, in the worker thread too.
        ids = [doc["_id"] for doc, _ in docs]
        keys: dict[str, MemberKey | None] = dict(await self.repo.create_member_keys(ids, now=now))
        if missing := [m for m in ids if m not in keys]:  # ids that had a key (or a tombstone) already
            keys.update(await self.repo.member_keys_of(missing))

        def seal_all() -> list[tuple[Doc, Sequence[OutgoingRecord]]]:
            m = self.members
            return [
                (doc, m.registered_records(doc, m.fresh_totals(doc), key))
                for doc, _ in docs
                if (key := keys.get(doc["_id"])) is not None  # a shredded id is never used again
            ]

        docs = await asyncio.to_thread(seal_all)
        report.created = await self.repo.insert_members(docs)
        report.skipped_existing += fresh_count - report.created
        await asyncio.to_thread(docs.clear)  # freed in the thread, not on the event loop
        self.notify()
        log.info("members_imported", municipality=ags, created=report.created, skipped=report.skipped_existing)
        return report

    async def export_csv(self, ags: str, *, dialect: CsvDialect = "rfc4180") -> bytes:
        """Return the living members of ``ags`` as CSV (the import's columns), formula cells neutralised."""
        await self.municipalities.municipality(ags)
        rows = []
        for doc in await self.repo.all_members(ags):
            contact = doc.get("contact") or {}
            address = contact.get("postal_address") or {}
            engagement = (doc.get("engagements") or [{}])[0]
            rows.append(
                {
                    "member_id": doc["_id"],
                    "given_name": doc.get("given_name"),
                    "family_name": doc.get("family_name"),
                    "email": contact.get("email") or "",
                    "phone": contact.get("phone") or "",
                    "date_of_birth": doc.get("date_of_birth") or "",
                    "street": address.get("street", ""),
                    "postal_code": address.get("postal_code", ""),
                    "city": address.get("city", ""),
                    "language": doc.get("language", "de"),
                    "consent_channels": ";".join((doc.get("consent") or {}).get("channels") or []),
                    "organisation_id": engagement.get("organisation_id") or "",
                    "field": engagement.get("field") or "",
                    "role": engagement.get("role") or "",
                    "since": engagement.get("since") or "",
                    "status": doc.get("status", "active"),
                }
            )
        return write_csv(rows, fieldnames=["member_id", *CSV_COLUMNS, "status"], dialect=dialect)


def _import_key(ags: str, row: dict[str, str]) -> str:
    canonical = "\x1f".join(f"{c}={row.get(c, '').casefold()}" for c in CSV_COLUMNS)
    return hashlib.sha256(f"{ags}\x1e{canonical}".encode()).hexdigest()[:32]


def _member_from_row(row: dict[str, str]) -> MemberCreate:
    address = None
    if row.get("street") or row.get("postal_code") or row.get("city"):
        address = {"street": row.get("street"), "postal_code": row.get("postal_code"), "city": row.get("city")}
    engagements = []
    if row.get("field"):
        engagements.append(
            {
                "organisation_id": row.get("organisation_id") or None,
                "field": row["field"],
                "role": row.get("role") or None,
                "since": row.get("since") or date.today().isoformat(),
            }
        )
    channels = [c.strip() for c in (row.get("consent_channels") or "").split(";") if c.strip()]
    return MemberCreate.model_validate(
        {
            "given_name": row.get("given_name", ""),
            "family_name": row.get("family_name", ""),
            "date_of_birth": row.get("date_of_birth") or None,
            "language": row.get("language") or "de",
            "contact": {
                "email": row.get("email") or None,
                "phone": row.get("phone") or None,
                "postal_address": address,
            },
            "consent": {"channels": channels, "source": "CSV-Import"} if channels else None,
            "engagements": engagements,
        }
    )


def _messages(exc: ValidationError) -> list[str]:
    """Return validation messages by field, never with the value (it may be personal)."""
    return [
        f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    ]

"""Owns the member CSV: parse, validate, import in bulk and export."""

from __future__ import annotations

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
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger

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
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        missing = [c for c in ("given_name", "family_name") if c not in (reader.fieldnames or [])]
        if missing:
            return [], [RowError(line=1, errors=[f"missing columns: {', '.join(missing)}"])]
        rows: list[tuple[int, MemberCreate, str]] = []
        errors: list[RowError] = []
        first_line: dict[str, int] = {}
        for number, row in enumerate(reader, start=2):
            clean = {k: (v or "").strip() for k, v in row.items() if k}
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
        rows, errors = self.parse_csv(ags, content)
        report = ImportReport(rows=len(rows) + len(errors), errors=errors, dry_run=dry_run)
        emails, names, imports = await self.repo.duplicate_keys(ags)
        erased = await self.repo.erased_marks_of(ags)
        fresh: list[tuple[MemberCreate, str]] = []
        for line, member, key in rows:
            ek = domain.email_key(member.contact.email)
            nk = domain.name_dob_key(member.given_name, member.family_name, member.date_of_birth)
            if key in imports or (ek and ek in emails) or (nk and nk in names):
                report.skipped_existing += 1
            elif erased and erased.intersection(self.erased_marks(ags, domain.identity_keys(email=ek, name_dob=nk))):
                report.errors.append(RowError(line=line, errors=[PREVIOUSLY_ERASED]))
            else:
                fresh.append((member, key))
        report.errors.sort(key=lambda e: e.line)
        if dry_run or report.errors:
            return report
        now = self.clock()
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
            docs.append((doc, self.members.registered_records(doc, self.members.fresh_totals(doc))))
        report.created = await self.repo.insert_members(docs)
        report.skipped_existing += len(fresh) - report.created
        self.notify()
        log.info("members_imported", municipality=ags, created=report.created, skipped=report.skipped_existing)
        return report

    async def export_csv(self, ags: str) -> str:
        """Return the living members of ``ags`` as CSV (the import's columns)."""
        await self.municipalities.municipality(ags)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["member_id", *CSV_COLUMNS, "status"])
        writer.writeheader()
        for doc in await self.repo.all_members(ags):
            contact = doc.get("contact") or {}
            address = contact.get("postal_address") or {}
            engagement = (doc.get("engagements") or [{}])[0]
            writer.writerow(
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
        return out.getvalue()


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

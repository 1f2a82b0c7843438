"""Runs the registry's use cases: load, change, save with the events in the outbox."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from engagiert.registry import domain
from engagiert.registry.domain import (
    ConsentIn,
    EngagementIn,
    HoursEntry,
    HoursIn,
    MemberCreate,
    MemberUpdate,
)
from engagiert.registry.repository import Conflict, Doc, Repository
from engagiert.shared.contracts import (
    ConfirmErasure,
    Consent,
    Contact,
    Engagement,
    EngagementEnded,
    EngagementStarted,
    ExternalRef,
    HoursRecorded,
    HoursTotals,
    MemberConsentChanged,
    MemberErased,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
    RegisterMember,
    ReportHours,
)
from engagiert.shared.contracts.base import EventData
from engagiert.shared.envelope import Envelope, OutgoingRecord, make_record
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.consumer import PermanentError

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


class NotFound(Exception):
    """The resource does not exist in this municipality."""


class DuplicateMember(Exception):
    """A member with the same e-mail, or the same name and date of birth, exists in the municipality."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(existing_id)
        self.existing_id = existing_id


class AlreadyExists(Exception):
    """A resource with this key exists."""


class InvalidChange(Exception):
    """The change breaks a rule (says which in the message)."""


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


def _now() -> datetime:
    return datetime.now(UTC)


class RegistryService:
    """Holds the use cases; handlers and routes call these and nothing below."""

    def __init__(
        self,
        repo: Repository,
        *,
        source: str,
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.repo = repo
        self.source = source
        self.notify = notify
        self.clock = clock

    def _record(self, data: EventData) -> OutgoingRecord:
        """Return the record of a fact, with the municipality extension (snapshots carry it inside)."""
        member = getattr(data, "member", None)
        municipality = getattr(data, "municipality", None) or (member.municipality if member else None)
        return make_record(data, source=self.source, municipality=municipality)

    # -- municipalities and organisations ------------------------------------------------------

    async def create_municipality(self, data: domain.MunicipalityCreate) -> Doc:
        """Create a municipality (tenant); AlreadyExists when its key is taken."""
        doc = {"_id": data.ags, **data.model_dump(mode="json", exclude={"ags"}), "created_at": self.clock()}
        if not await self.repo.insert_municipality(doc):
            raise AlreadyExists(data.ags)
        return doc

    async def municipality(self, ags: str) -> Doc:
        """Return a municipality; NotFound when unknown."""
        doc = await self.repo.get_municipality(ags)
        if doc is None:
            raise NotFound(ags)
        return doc

    async def update_municipality(self, ags: str, data: domain.MunicipalityUpdate) -> Doc:
        """Change a municipality."""
        changes = data.model_dump(mode="json", exclude_unset=True)
        doc = await self.repo.update_municipality(ags, changes) if changes else await self.repo.get_municipality(ags)
        if doc is None:
            raise NotFound(ags)
        return doc

    async def create_organisation(self, ags: str, data: domain.OrganisationCreate) -> Doc:
        """Create an organisation in a known municipality."""
        await self.municipality(ags)
        doc = {
            "_id": domain.new_id("o"),
            "municipality": ags,
            **data.model_dump(mode="json"),
            "created_at": self.clock(),
        }
        await self.repo.insert_organisation(doc)
        return doc

    async def organisation(self, ags: str, org_id: str) -> Doc:
        """Return an organisation of ``ags``; NotFound otherwise."""
        doc = await self.repo.get_organisation(ags, org_id)
        if doc is None:
            raise NotFound(org_id)
        return doc

    async def update_organisation(self, ags: str, org_id: str, data: domain.OrganisationUpdate) -> Doc:
        """Change an organisation."""
        changes = data.model_dump(mode="json", exclude_unset=True)
        doc = (
            await self.repo.update_organisation(ags, org_id, changes)
            if changes
            else await self.repo.get_organisation(ags, org_id)
        )
        if doc is None:
            raise NotFound(org_id)
        return doc

    # -- member reads --------------------------------------------------------------------------------

    async def totals_for(self, docs: Sequence[Doc]) -> dict[str, HoursTotals]:
        """Return the derived figures of members (hours read in one query)."""
        today = self.clock().date()
        entries: dict[str, list[HoursEntry]] = {d["_id"]: [] for d in docs}
        for h in await self.repo.hours_of([d["_id"] for d in docs]):
            entries.setdefault(h["member_id"], []).append(domain.entry_from_document(h))
        return {d["_id"]: domain.totals(entries[d["_id"]], _engagements(d), today=today) for d in docs}

    async def member(self, ags: str, member_id: str) -> Doc:
        """Return a living member of ``ags`` with figures; NotFound for unknown or erased."""
        doc = await self.repo.get_member(ags, member_id)
        if doc is None or doc.get("erased"):
            raise NotFound(member_id)
        return await self.view(doc)

    async def view(self, doc: Doc, member_totals: HoursTotals | None = None) -> Doc:
        """Return the public view of a member document."""
        if member_totals is None:
            member_totals = (await self.totals_for([doc]))[doc["_id"]]
        snap = domain.snapshot(doc, member_totals).model_dump(mode="json")
        periods = domain.engagement_periods(_engagements(doc), today=self.clock().date())
        snap["engagement_periods"] = [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in periods]
        snap["engagement_breaks"] = [
            {"start": p.start.isoformat(), "end": p.end.isoformat()} for p in domain.engagement_breaks(periods)
        ]
        return snap

    async def list_members(
        self,
        ags: str,
        *,
        status: str | None = None,
        organisation_id: str | None = None,
        field: str | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Doc], str | None]:
        """Return a page of members and the cursor of the next page (None at the end)."""
        docs = await self.repo.list_members(
            ags,
            status=status,
            organisation_id=organisation_id,
            field=field,
            name=domain.normalise_name(name) if name else None,
            after=cursor,
            limit=limit + 1,
        )
        more = len(docs) > limit
        docs = docs[:limit]
        figures = await self.totals_for(docs)
        items = [await self.view(d, figures[d["_id"]]) for d in docs]
        return items, (docs[-1]["_id"] if more and docs else None)

    # -- member writes -------------------------------------------------------------------------------

    async def register(self, ags: str, data: MemberCreate, *, member_id: str | None = None) -> Doc:
        """Register a member; DuplicateMember when the same person is registered already."""
        await self.municipality(ags)
        now = self.clock()
        existing = await self.repo.find_duplicate(
            ags,
            email_key=domain.email_key(data.contact.email),
            name_dob_key=domain.name_dob_key(data.given_name, data.family_name, data.date_of_birth),
        )
        if existing is not None:
            raise DuplicateMember(existing["_id"])
        if data.external_refs:
            keys = [domain.ext_key(r) for r in data.external_refs]
            taken = await self.repo.members_by_ext_keys(ags, keys)
            if taken:
                raise DuplicateMember(taken[0]["_id"])
        doc = domain.member_document(
            member_id=member_id or domain.new_id("m"),
            ags=ags,
            data=data,
            engagements=domain.engagements_from(data.engagements),
            consent=domain.consent_from(data.consent, now=now),
            now=now,
        )
        figures = self._fresh_totals(doc)
        if not await self.repo.insert_member(doc, self._registered_records(doc, figures)):
            raise DuplicateMember(doc["_id"])
        self.notify()
        log.info("member_registered", municipality=ags, member_id=doc["_id"])
        return await self.view(doc, figures)

    def _fresh_totals(self, doc: Doc) -> HoursTotals:
        return domain.totals([], _engagements(doc), today=self.clock().date())

    def _registered_records(self, doc: Doc, figures: HoursTotals) -> list[OutgoingRecord]:
        records = [self._record(MemberRegistered(member=domain.snapshot(doc, figures)))]
        for e in _engagements(doc):
            records.append(
                self._record(EngagementStarted(member_id=doc["_id"], municipality=doc["municipality"], engagement=e))
            )
            if e.until is not None:
                records.append(
                    self._record(
                        EngagementEnded(
                            member_id=doc["_id"],
                            municipality=doc["municipality"],
                            engagement_id=e.engagement_id,
                            until=e.until,
                        )
                    )
                )
        return records

    async def _change(
        self,
        ags: str,
        member_id: str,
        mutate: Callable[[Doc], Awaitable[tuple[Doc, list[EventData]]]],
        *,
        event_id: str | None = None,
        attempts: int = 5,
    ) -> Doc:
        """Load a member, let ``mutate`` return the new fields and extra facts, save with the events.

        The write is guarded by the revision, so concurrent changes never overwrite each other:
        the loser reloads and applies its change again.
        """
        for _ in range(attempts):
            doc = await self.repo.get_member(ags, member_id)
            if doc is None or doc.get("erased"):
                raise NotFound(member_id)
            if event_id is not None and event_id in (doc.get("_applied") or []):
                return await self.view(doc)
            changes, facts = await mutate(doc)
            after = {**doc, **changes}
            changed = domain.changed_fields(doc, after, domain.MEMBER_FIELDS)
            if not changed:
                return await self.view(doc)
            revision = doc["revision"] + 1
            after["revision"] = revision
            after.update(domain.derived_keys(after))
            dup = await self.repo.find_duplicate(
                ags,
                email_key=after.get("email_key"),
                name_dob_key=after.get("name_dob_key"),
                exclude=member_id,
            )
            if dup is not None and (
                after.get("email_key") != doc.get("email_key") or after.get("name_dob_key") != doc.get("name_dob_key")
            ):
                raise DuplicateMember(dup["_id"])
            figures = (await self.totals_for([after]))[member_id]
            records = [
                self._record(f.model_copy(update={"revision": revision}) if hasattr(f, "revision") else f)
                for f in facts
            ]
            started, ended = domain.engagement_changes(_engagements(doc), _engagements(after))
            records += [
                self._record(EngagementStarted(member_id=member_id, municipality=ags, engagement=e)) for e in started
            ]
            records += [
                self._record(
                    EngagementEnded(member_id=member_id, municipality=ags, engagement_id=e.engagement_id, until=e.until)
                )
                for e in ended
                if e.until is not None
            ]
            records.append(self._record(MemberUpdated(member=domain.snapshot(after, figures), changed=changed)))
            set_fields = {k: after[k] for k in (*changed, *domain.derived_keys(after).keys())}
            set_fields.update(revision=revision, updated_at=self.clock())
            try:
                await self.repo.replace_member_guarded(
                    doc, expected_revision=doc["revision"], set_fields=set_fields, records=records, event_id=event_id
                )
            except Conflict:
                continue
            self.notify()
            return await self.view(after, figures)
        raise InvalidChange("the member changed too often meanwhile; try again")

    async def update(self, ags: str, member_id: str, data: MemberUpdate) -> Doc:
        """Change a member's data; publishes MemberUpdated (and consent/engagement facts)."""
        given = data.model_dump(exclude_unset=True)

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            changes: Doc = {}
            facts: list[EventData] = []
            for name in ("given_name", "family_name", "language"):
                if name in given and given[name] is not None:
                    changes[name] = given[name]
            if "date_of_birth" in given:
                changes["date_of_birth"] = data.date_of_birth.isoformat() if data.date_of_birth else None
            if data.contact is not None:
                changes["contact"] = data.contact.model_dump(mode="json")
            if data.juleica is not None:
                changes["juleica"] = data.juleica.model_dump(mode="json")
            if data.external_refs is not None:
                keys = [domain.ext_key(r) for r in data.external_refs]
                taken = [m for m in await self.repo.members_by_ext_keys(ags, keys) if m["_id"] != member_id]
                if taken:
                    raise DuplicateMember(taken[0]["_id"])
                changes["external_refs"] = [r.model_dump(mode="json") for r in data.external_refs]
            if data.engagements is not None:
                known = {e.engagement_id for e in _engagements(doc)}
                unknown = [
                    e.engagement_id for e in data.engagements if e.engagement_id and e.engagement_id not in known
                ]
                if unknown:
                    raise InvalidChange(f"unknown engagement ids: {', '.join(unknown)}")
                changes["engagements"] = [e.model_dump(mode="json") for e in domain.engagements_from(data.engagements)]
            if data.consent is not None:
                consent = domain.consent_from(data.consent, now=self.clock())
                if consent.channels != Consent.model_validate(doc.get("consent") or {}).channels:
                    changes["consent"] = consent.model_dump(mode="json")
                    facts.append(
                        MemberConsentChanged(member_id=member_id, municipality=ags, revision=1, consent=consent)
                    )
            return changes, facts

        return await self._change(ags, member_id, mutate)

    async def change_status(self, ags: str, member_id: str, status: str) -> Doc:
        """Change a member's status; publishes MemberStatusChanged and MemberUpdated."""

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            previous = doc.get("status", "active")
            if previous == status:
                return {}, []
            fact = MemberStatusChanged(
                member_id=member_id,
                municipality=ags,
                revision=1,
                status=status,
                previous_status=previous,
            )
            return {"status": status}, [fact]

        return await self._change(ags, member_id, mutate)

    async def withdraw_consent(self, ags: str, member_id: str) -> Doc:
        """Withdraw a member's consent; publishes MemberConsentChanged and MemberUpdated."""

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            consent = Consent.model_validate(doc.get("consent") or {})
            if not consent.channels and consent.withdrawn_at is not None:
                return {}, []
            new = domain.withdrawn(consent, now=self.clock())
            fact = MemberConsentChanged(member_id=member_id, municipality=ags, revision=1, consent=new)
            return {"consent": new.model_dump(mode="json")}, [fact]

        return await self._change(ags, member_id, mutate)

    # -- hours ----------------------------------------------------------------------------------------

    async def record_hours(self, ags: str, items: Sequence[tuple[str, HoursIn]], *, reported_by: str) -> list[Doc]:
        """Record hours for members of ``ags`` from ``(member_id, hours)`` pairs; NotFound for an unknown member."""
        ids = list(dict.fromkeys(m for m, _ in items))
        members = {d["_id"]: d for d in await self.repo.members_by_ids(ids)}
        for member_id in ids:
            doc = members.get(member_id)
            if doc is None or doc["municipality"] != ags or doc.get("erased"):
                raise NotFound(member_id)
        for _, item in items:
            if item.organisation_id and await self.repo.get_organisation(ags, item.organisation_id) is None:
                raise InvalidChange(f"unknown organisation {item.organisation_id}")
        batch = [(domain.new_id("h"), members[m], item, reported_by) for m, item in items]
        return await self._save_hours(batch)

    async def _save_hours(self, batch: Sequence[tuple[str, Doc, HoursIn, str]]) -> list[Doc]:
        """Insert hours entries (idempotent by entry id), each with HoursRecorded carrying the running totals."""
        today = self.clock().date()
        member_ids = list(dict.fromkeys(d["_id"] for _, d, _, _ in batch))
        known: dict[str, list[HoursEntry]] = {m: [] for m in member_ids}
        seen: set[str] = set()
        for h in await self.repo.hours_of(member_ids):
            known[h["member_id"]].append(domain.entry_from_document(h))
            seen.add(h["_id"])
        docs: list[tuple[Doc, list[OutgoingRecord]]] = []
        out: list[Doc] = []
        for entry_id, member, item, reported_by in batch:
            if entry_id in seen:
                continue
            seen.add(entry_id)
            entries = known[member["_id"]]
            entries.append(HoursEntry(hours=item.hours, date_from=item.date_from, date_to=item.date_to))
            figures = domain.totals(entries, _engagements(member), today=today)
            fact = HoursRecorded(
                entry_id=entry_id,
                member_id=member["_id"],
                municipality=member["municipality"],
                hours=item.hours,
                date_from=item.date_from,
                date_to=item.date_to,
                organisation_id=item.organisation_id,
                reported_by=reported_by[:200],
                totals=figures,
            )
            doc = {
                "_id": entry_id,
                "member_id": member["_id"],
                "municipality": member["municipality"],
                "hours": item.hours,
                "date_from": item.date_from.isoformat(),
                "date_to": item.date_to.isoformat() if item.date_to else None,
                "organisation_id": item.organisation_id,
                "reported_by": reported_by[:200],
                "recorded_at": self.clock(),
            }
            docs.append((doc, [self._record(fact)]))
            out.append({**fact.model_dump(mode="json")})
        await self.repo.insert_hours(docs)
        self.notify()
        return out

    # -- erasure ----------------------------------------------------------------------------------------

    async def erase(self, ags: str, member_id: str) -> Doc:
        """Erase a member (DSGVO Art. 17): a tombstone stays, hours go, MemberErased is published."""
        now = self.clock()
        record = self._record(MemberErased(member_id=member_id, municipality=ags, erased_at=now))
        # One guarded update (atomic on the store): it misses only a member that is gone or erased already.
        if not await self._erase_once(ags, member_id, record, now):
            raise NotFound(member_id)
        await self.repo.delete_hours_of(member_id)
        self.notify()
        log.info("member_erased", municipality=ags, member_id=member_id)
        return await self.erasure_status(ags, member_id)

    async def _erase_once(self, ags: str, member_id: str, record: OutgoingRecord, now: datetime) -> bool:
        return await self.repo.erase_member(
            ags,
            member_id,
            set_fields={
                "erased": True,
                "status": "erased",
                "erasure": {"erased_at": now, "confirmations": {}},
                "updated_at": now,
            },
            unset=[*domain.PERSONAL_FIELDS, "org_ids", "fields", "_applied", "revision"],
            record=record,
        )

    async def erasure_status(self, ags: str, member_id: str) -> Doc:
        """Return which services confirmed a member's erasure."""
        doc = await self.repo.get_member(ags, member_id)
        if doc is None or not doc.get("erased"):
            raise NotFound(member_id)
        erasure = doc.get("erasure") or {}
        confirmations = erasure.get("confirmations") or {}
        expected = ("events", "notifications")
        return {
            "member_id": member_id,
            "municipality": ags,
            "erased_at": erasure.get("erased_at"),
            "confirmations": {s: confirmations.get(s) for s in expected},
            "complete": all(confirmations.get(s) for s in expected),
        }

    # -- CSV --------------------------------------------------------------------------------------------

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
        await self.municipality(ags)
        rows, errors = self.parse_csv(ags, content)
        report = ImportReport(rows=len(rows) + len(errors), errors=errors, dry_run=dry_run)
        emails, names, imports = await self.repo.duplicate_keys(ags)
        fresh: list[tuple[MemberCreate, str]] = []
        for _, member, key in rows:
            ek = domain.email_key(member.contact.email)
            nk = domain.name_dob_key(member.given_name, member.family_name, member.date_of_birth)
            if key in imports or (ek and ek in emails) or (nk and nk in names):
                report.skipped_existing += 1
            else:
                fresh.append((member, key))
        if dry_run or errors:
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
            docs.append((doc, self._registered_records(doc, self._fresh_totals(doc))))
        report.created = await self.repo.insert_members(docs)
        report.skipped_existing += len(fresh) - report.created
        self.notify()
        log.info("members_imported", municipality=ags, created=report.created, skipped=report.skipped_existing)
        return report

    async def export_csv(self, ags: str) -> str:
        """Return the living members of ``ags`` as CSV (the import's columns)."""
        await self.municipality(ags)
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

    # -- inbound commands --------------------------------------------------------------------------------

    async def apply_inbound(self, events: Sequence[Envelope[Any]]) -> None:
        """Apply a batch of inbound commands; PermanentError for a command that can never apply."""
        munis = {e.data.municipality for e in events}
        known = await self.repo.existing_municipalities(list(munis))
        for e in events:
            if e.data.municipality not in known:
                raise PermanentError(f"unknown municipality {e.data.municipality}")
        hours = [e for e in events if isinstance(e.data, ReportHours)]
        for e in events:
            if isinstance(e.data, RegisterMember):
                try:
                    await self.register_from(e.id, e.data, source=e.source)
                except NotFound as exc:
                    raise PermanentError(f"member {exc} was erased meanwhile") from None
            elif isinstance(e.data, ConfirmErasure):
                await self.confirm_erasure(e.data)
        if hours:
            await self.report_hours_from(hours)

    async def register_from(self, event_id: str, cmd: RegisterMember, *, source: str) -> None:
        """Register or update the member named by an external reference (idempotent by event id)."""
        ags = cmd.municipality
        key = domain.ext_key(cmd.external_ref)
        found = await self.repo.members_by_ext_keys(ags, [key])
        target = found[0]["_id"] if found else None
        if target is None:
            dup = await self.repo.find_duplicate(
                ags,
                email_key=domain.email_key(cmd.email),
                name_dob_key=domain.name_dob_key(cmd.given_name, cmd.family_name, cmd.date_of_birth),
            )
            target = dup["_id"] if dup else None
        if target is None:
            org_id = await self._org_id(ags, cmd.organisation_name)
            engagements = []
            if cmd.field is not None:
                engagements.append(
                    EngagementIn(
                        organisation_id=org_id,
                        organisation_name=cmd.organisation_name,
                        field=cmd.field,
                        role=cmd.role,
                        since=cmd.since or self.clock().date(),
                    )
                )
            data = MemberCreate(
                given_name=cmd.given_name,
                family_name=cmd.family_name,
                date_of_birth=cmd.date_of_birth,
                language=cmd.language,
                contact=Contact(email=cmd.email, phone=cmd.phone, postal_address=cmd.postal_address),
                consent=ConsentIn(channels=cmd.consent_channels or [], source=source[:200]),
                engagements=engagements,
                external_refs=[cmd.external_ref],
            )
            member_id = domain.stable_id("m", ags, key)
            if any(d.get("erased") for d in await self.repo.members_by_ids([member_id])):
                member_id = domain.stable_id("m", ags, key, event_id)  # never revive an erased person's id
            try:
                await self.register(ags, data, member_id=member_id)
                return
            except DuplicateMember as exc:  # a redelivery or a race created it meanwhile
                target = exc.existing_id
        await self._update_from(event_id, cmd, target, source=source)

    async def _update_from(self, event_id: str, cmd: RegisterMember, member_id: str, *, source: str) -> None:
        ags = cmd.municipality

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            changes: Doc = {"given_name": cmd.given_name, "family_name": cmd.family_name, "language": cmd.language}
            if cmd.date_of_birth is not None:
                changes["date_of_birth"] = cmd.date_of_birth.isoformat()
            contact = dict(doc.get("contact") or {})
            for name, value in (("email", cmd.email), ("phone", cmd.phone), ("postal_address", cmd.postal_address)):
                if value is not None:
                    contact[name] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
            changes["contact"] = Contact.model_validate(contact).model_dump(mode="json")
            refs = [ExternalRef.model_validate(r) for r in doc.get("external_refs") or []]
            if cmd.external_ref not in refs:
                changes["external_refs"] = [r.model_dump(mode="json") for r in [*refs, cmd.external_ref]]
            facts: list[EventData] = []
            if cmd.consent_channels is not None:
                consent = domain.consent_from(
                    ConsentIn(channels=cmd.consent_channels, source=source[:200]), now=self.clock()
                )
                if consent.channels != Consent.model_validate(doc.get("consent") or {}).channels:
                    changes["consent"] = consent.model_dump(mode="json")
                    facts.append(
                        MemberConsentChanged(member_id=member_id, municipality=ags, revision=1, consent=consent)
                    )
            if cmd.field is not None:
                current = _engagements(doc)
                if not any(e.field == cmd.field and e.organisation_name == cmd.organisation_name for e in current):
                    new = Engagement(
                        engagement_id=domain.stable_id("e", event_id),
                        organisation_id=await self._org_id(ags, cmd.organisation_name),
                        organisation_name=cmd.organisation_name,
                        field=cmd.field,
                        role=cmd.role,
                        since=cmd.since or self.clock().date(),
                    )
                    changes["engagements"] = [e.model_dump(mode="json") for e in [*current, new]]
            return changes, facts

        await self._change(ags, member_id, mutate, event_id=event_id)

    async def _org_id(self, ags: str, name: str | None) -> str | None:
        if not name:
            return None
        org = await self.repo.organisation_by_name(ags, name)
        return org["_id"] if org else None

    async def report_hours_from(self, events: Sequence[Envelope[Any]]) -> None:
        """Record reported hours in bulk; entry ids derive from event ids, so a redelivery changes nothing."""
        by_id = [e for e in events if e.data.member_id]
        by_ref: dict[str, list[Envelope[Any]]] = {}
        for e in events:
            if e.data.external_ref is not None:
                by_ref.setdefault(e.data.municipality, []).append(e)
        members = {d["_id"]: d for d in await self.repo.members_by_ids([e.data.member_id for e in by_id])}
        resolved: dict[str, Doc] = {}
        for e in by_id:
            doc = members.get(e.data.member_id)
            if doc is None or doc["municipality"] != e.data.municipality or doc.get("erased"):
                raise PermanentError(f"unknown member {e.data.member_id} in municipality {e.data.municipality}")
            resolved[e.id] = doc
        for ags, evs in by_ref.items():
            keys = list({domain.ext_key(e.data.external_ref) for e in evs})
            found: dict[str, Doc] = {}
            for doc in await self.repo.members_by_ext_keys(ags, keys):
                for k in doc.get("ext_keys") or []:
                    found[k] = doc
            for e in evs:
                key = domain.ext_key(e.data.external_ref)
                if key not in found:
                    system = e.data.external_ref.system
                    raise PermanentError(f"unknown external reference of system {system} in municipality {ags}")
                resolved[e.id] = found[key]
        org_ids: dict[tuple[str, str], str | None] = {}
        batch: list[tuple[str, Doc, HoursIn, str]] = []
        for e in events:
            cmd: ReportHours = e.data
            org_key = (cmd.municipality, cmd.organisation_name or "")
            if org_key not in org_ids:
                org_ids[org_key] = await self._org_id(cmd.municipality, cmd.organisation_name)
            item = HoursIn(
                hours=cmd.hours, date_from=cmd.date_from, date_to=cmd.date_to, organisation_id=org_ids[org_key]
            )
            batch.append((domain.stable_id("h", e.id), resolved[e.id], item, cmd.reported_by or e.source))
        await self._save_hours(batch)

    async def confirm_erasure(self, cmd: ConfirmErasure) -> None:
        """Record a service's confirmation of an erasure; PermanentError when no such erased member exists."""
        if not await self.repo.record_confirmation(cmd.municipality, cmd.member_id, cmd.service, cmd.erased_at):
            raise PermanentError(f"no erased member {cmd.member_id} in municipality {cmd.municipality}")


def _engagements(doc: Doc) -> list[Engagement]:
    return [Engagement.model_validate(e) for e in doc.get("engagements") or []]


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

"""Holds the registry's models, rules and derived figures; no I/O."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field, model_validator

from engagiert.shared.contracts import (
    Consent,
    Contact,
    Engagement,
    ExternalRef,
    HoursTotals,
    Juleica,
    MemberSnapshot,
    MunicipalityProfile,
    PostalAddress,
)
from engagiert.shared.contracts.base import Channel, EntityId, Field_, Hours, Language, MemberStatus
from engagiert.shared.contracts.members import MunicipalityKind
from engagiert.shared.text import fold

OrganisationKind = Literal["Verein", "Initiative", "Freiwilligenagentur", "Stiftung", "Kirchengemeinde", "Sonstige"]

DAYS_PER_YEAR = 365.25
PERSONAL_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "contact",
    "external_refs",
    "ext_keys",
    "email_key",
    "name_dob_key",
    "search",
    "import_key",
    "engagements",
    "juleica",
    "consent",
    "withdrawn_channels",
    "language",
)
"""Fields of a member document that erasure removes (the tombstone keeps id, municipality, dates)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- municipalities and organisations ---------------------------------------------------------


class MunicipalityCreate(_Model):
    """A municipality (tenant) as a network admin creates it."""

    ags: str = Field(pattern=r"^[0-9]{8}$")
    name: str = Field(min_length=1, max_length=200)
    kind: MunicipalityKind
    contact_point_name: str | None = Field(default=None, max_length=200)
    contact_point_email: EmailStr | None = None
    contact_point_phone: str | None = Field(default=None, max_length=40)
    postal_address: PostalAddress | None = None
    website: AnyHttpUrl | None = None
    logo_url: AnyHttpUrl | None = None
    inhabitants: int | None = Field(default=None, ge=0, le=100_000_000)
    named_in_network: bool = Field(
        default=True, description="false: the network's figures show the municipality by kind and size class only"
    )


class MunicipalityUpdate(_Model):
    """Changes to a municipality."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: MunicipalityKind | None = None
    contact_point_name: str | None = Field(default=None, max_length=200)
    contact_point_email: EmailStr | None = None
    contact_point_phone: str | None = Field(default=None, max_length=40)
    postal_address: PostalAddress | None = None
    website: AnyHttpUrl | None = None
    logo_url: AnyHttpUrl | None = None
    inhabitants: int | None = Field(default=None, ge=0, le=100_000_000)
    named_in_network: bool | None = Field(
        default=None, description="false: the network's figures show the municipality by kind and size class only"
    )


def municipality_profile(doc: dict[str, Any]) -> MunicipalityProfile:
    """Return the profile a municipality document publishes."""
    fields = {k: doc.get(k) for k in MunicipalityProfile.model_fields if k not in ("ags", "revision")}
    fields["named_in_network"] = doc.get("named_in_network") is not False  # absent before it existed: named
    return MunicipalityProfile(ags=doc["_id"], revision=int(doc.get("revision") or 1), **fields)


class OrganisationCreate(_Model):
    """An organisation of a municipality."""

    name: str = Field(min_length=1, max_length=200)
    kind: OrganisationKind = "Verein"
    fields: list[Field_] = Field(default_factory=list)


class OrganisationUpdate(_Model):
    """Changes to an organisation."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: OrganisationKind | None = None
    fields: list[Field_] | None = None


# -- members ------------------------------------------------------------------------------------


class EngagementIn(_Model):
    """An engagement as a caller sends it (the id is optional: new engagements get one)."""

    engagement_id: EntityId | None = None
    organisation_id: EntityId | None = None
    organisation_name: str | None = Field(default=None, max_length=200)
    field: Field_
    role: str | None = Field(default=None, max_length=200)
    since: date
    until: date | None = None

    @model_validator(mode="after")
    def _until_not_before_since(self) -> EngagementIn:
        if self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class ConsentIn(_Model):
    """Consent as a caller gives it."""

    channels: list[Channel] = Field(default_factory=list)
    source: str | None = Field(default=None, max_length=200)


class MemberCreate(_Model):
    """A member as staff register them."""

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    language: Language = "de"
    status: MemberStatus = "active"
    contact: Contact = Field(default_factory=Contact)
    consent: ConsentIn | None = None
    engagements: list[EngagementIn] = Field(default_factory=list, max_length=100)
    juleica: Juleica = Field(default_factory=Juleica)
    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=20)


class MemberUpdate(_Model):
    """Changes to a member: omitted fields stay as they are."""

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    date_of_birth: date | None = None
    language: Language | None = None
    contact: Contact | None = None
    consent: ConsentIn | None = None
    engagements: list[EngagementIn] | None = Field(default=None, max_length=100)
    juleica: Juleica | None = None
    external_refs: list[ExternalRef] | None = Field(default=None, max_length=20)


class StatusChange(_Model):
    """A new status of a member."""

    status: MemberStatus


class HoursIn(_Model):
    """Hours of one member for a day or a period."""

    hours: Hours
    date_from: date
    date_to: date | None = None
    organisation_id: EntityId | None = None

    @model_validator(mode="after")
    def _period_is_ordered(self) -> HoursIn:
        if self.date_to is not None and self.date_to < self.date_from:
            raise ValueError("date_to must not be before date_from")
        return self


class HoursBulkItem(HoursIn):
    """Hours of one member in a bulk report."""

    member_id: EntityId


@dataclass(frozen=True, slots=True)
class HoursEntry:
    """Hours recorded for a member (the figures need only these)."""

    hours: float
    date_from: date
    date_to: date | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """A span of engagement or a break between spans, both days included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        """Return the number of days, both ends included."""
        return (self.end - self.start).days + 1


# -- rules ----------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """Return a fresh id with a readable prefix."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def stable_id(prefix: str, *parts: str) -> str:
    """Return an id derived from ``parts`` (the same input always gives the same id)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


def normalise_name(text: str) -> str:
    """Return ``text`` folded for duplicate keys and search (NFKC, invisible characters, case, blanks)."""
    return fold(text)


def email_key(email: str | None) -> str | None:
    """Return the duplicate key of an e-mail address (case-insensitive), or None."""
    return email.strip().casefold() if email else None


def name_dob_key(given_name: str, family_name: str, date_of_birth: date | None) -> str | None:
    """Return the duplicate key of name and date of birth, or None without a date of birth."""
    if date_of_birth is None:
        return None
    return f"{normalise_name(given_name)}|{normalise_name(family_name)}|{date_of_birth.isoformat()}"


def ext_key(ref: ExternalRef) -> str:
    """Return the lookup key of an external reference (unique per municipality and system)."""
    return f"{ref.system}:{ref.id}"


def identity_keys(*, email: str | None, name_dob: str | None, ext_keys: Iterable[str] = ()) -> list[str]:
    """Return the keys that identify a person: normalised e-mail, name with birth date, external references."""
    keys = [f"e:{email}"] if email else []
    if name_dob:
        keys.append(f"n:{name_dob}")
    return keys + [f"x:{k}" for k in ext_keys]


def erased_marks(ags: str, keys: Iterable[str], *, salt: bytes) -> list[str]:
    """Return the salted hashes (HMAC-SHA256) of identity keys: what the registry keeps of an erased person."""
    return [hmac.new(salt, f"{ags}\x1f{k}".encode(), hashlib.sha256).hexdigest() for k in dict.fromkeys(keys)]


def search_text(given_name: str, family_name: str) -> str:
    """Return the folded text the name filter searches."""
    return normalise_name(f"{given_name} {family_name}")


def engagements_from(items: Sequence[EngagementIn], previous: Sequence[Engagement] = ()) -> list[Engagement]:
    """Return engagements with ids: known ids are kept, new engagements get one."""
    return [
        Engagement(
            engagement_id=item.engagement_id or new_id("e"),
            organisation_id=item.organisation_id,
            organisation_name=item.organisation_name,
            field=item.field,
            role=item.role,
            since=item.since,
            until=item.until,
        )
        for item in items
    ]


def engagement_changes(
    before: Sequence[Engagement], after: Sequence[Engagement]
) -> tuple[list[Engagement], list[Engagement]]:
    """Return (started, ended): engagements new in ``after``, and those that gained an end date."""
    old = {e.engagement_id: e for e in before}
    started = [e for e in after if e.engagement_id not in old]
    ended = [
        e
        for e in after
        if e.until is not None and (e.engagement_id not in old or old[e.engagement_id].until != e.until)
    ]
    return started, ended


def consent_from(given: ConsentIn | None, *, now: datetime) -> Consent:
    """Return consent as recorded now (no channels: no consent)."""
    if given is None or not given.channels:
        return Consent(source=given.source if given else None)
    return Consent(channels=list(dict.fromkeys(given.channels)), given_at=now, source=given.source)


def withdrawn(consent: Consent, *, now: datetime) -> Consent:
    """Return ``consent`` withdrawn now (no channel left)."""
    return Consent(channels=[], given_at=consent.given_at, source=consent.source, withdrawn_at=now)


def narrowed(consent: Consent, *, without: Sequence[Channel] | None, now: datetime) -> Consent | None:
    """Return ``consent`` without the channels ``without`` (all when None), or None when that changes nothing."""
    if without is None:
        return None if not consent.channels and consent.withdrawn_at is not None else withdrawn(consent, now=now)
    if not set(without) & set(consent.channels):
        return None
    left = [c for c in consent.channels if c not in without]
    # The last channel gone is a withdrawal (as staff's): only staff grant the channels again.
    return consent.model_copy(update={"channels": left}) if left else withdrawn(consent, now=now)


ALL_CHANNELS: tuple[Channel, ...] = ("email", "post", "phone")


def withdrawn_channels(doc: dict[str, Any]) -> list[str]:
    """Return the channels a member withdrew that only staff may grant again (all after a full withdrawal)."""
    consent = Consent.model_validate(doc.get("consent") or {})
    if consent.withdrawn_at is not None:
        return list(ALL_CHANNELS)
    return [c for c in ALL_CHANNELS if c in (doc.get("withdrawn_channels") or [])]


def withdrawn_after(previous: Sequence[str], before: Consent, after: Consent) -> list[str]:
    """Return the withdrawn channels after a change of consent: dropped ones join, granted ones leave."""
    if after.withdrawn_at is not None:
        return list(ALL_CHANNELS)
    dropped = set(before.channels) - set(after.channels)
    return [c for c in ALL_CHANNELS if (c in previous or c in dropped) and c not in after.channels]


def inbound_consent(
    current: Consent,
    requested: Sequence[Channel],
    *,
    blocked: Sequence[str],
    may_grant: bool,
    source: str,
    now: datetime,
) -> Consent | None:
    """Return the consent a connected system's command leaves, or None when it changes nothing.

    A system may always narrow consent. It may grant a channel only for a member it names by its
    own reference (``may_grant``), and never one in ``blocked`` (withdrawn): only staff grant those again.
    """
    keep = [c for c in dict.fromkeys(requested) if c in current.channels]
    new = [c for c in dict.fromkeys(requested) if c not in current.channels and may_grant and c not in blocked]
    channels = [c for c in dict.fromkeys(requested) if c in keep or c in new]
    if set(channels) == set(current.channels):
        return None
    if not channels:
        return withdrawn(current, now=now)
    if new:
        return Consent(channels=channels, given_at=now, source=source)
    return current.model_copy(update={"channels": channels})


# -- derived figures --------------------------------------------------------------------------


def _overlap_days(start: date, end: date, lo: date, hi: date) -> int:
    first, last = max(start, lo), min(end, hi)
    return max((last - first).days + 1, 0)


def _spread(entry: HoursEntry, lo: date, hi: date) -> float:
    """Return the share of ``entry``'s hours that falls in [lo, hi], spread evenly over its days."""
    end = entry.date_to or entry.date_from
    total_days = (end - entry.date_from).days + 1
    return entry.hours * _overlap_days(entry.date_from, end, lo, hi) / total_days


def hours_within(entry: HoursEntry, *, start: date, end: date) -> float:
    """Return the hours of ``entry`` from ``start`` to ``end`` (both included), spread evenly over its days."""
    return _spread(entry, start, end)


def hours_last_12_months(entries: Iterable[HoursEntry], *, today: date) -> float:
    """Return the hours in the 12 months up to and including ``today`` (periods counted pro rata)."""
    try:
        lo = today.replace(year=today.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February: a year back is 28 February
        lo = date(today.year - 1, 3, 1)
    return round(sum(_spread(e, lo, today) for e in entries), 2)


def hours_by_year(entries: Iterable[HoursEntry]) -> dict[str, float]:
    """Return hours per calendar year; a period across years is split by its days."""
    years: dict[str, float] = {}
    for entry in entries:
        end = entry.date_to or entry.date_from
        for year in range(entry.date_from.year, end.year + 1):
            share = _spread(entry, date(year, 1, 1), date(year, 12, 31))
            years[str(year)] = years.get(str(year), 0.0) + share
    return {y: round(h, 2) for y, h in sorted(years.items())}


def _window_start(today: date) -> date:
    """Return the first day of the 12 months up to and including ``today``."""
    try:
        return today.replace(year=today.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February: a year back is 28 February
        return date(today.year - 1, 3, 1)


@dataclass(slots=True)
class RunningFigures:
    """A member's hours kept as running sums, so one more entry costs the same whatever the history.

    ``years`` holds the hours per calendar year; ``days`` the hours per day (an entry's hours
    spread evenly over its days, as the figures count them) for the days of the current 12-month
    window and later. Days before the window are dropped: the window only moves forward.
    """

    years: dict[str, float]
    days: dict[str, float]

    def add(self, entry: HoursEntry, *, today: date) -> None:
        """Add ``entry``'s hours."""
        self._change(entry, 1.0, today=today)

    def remove(self, entry: HoursEntry, *, today: date) -> None:
        """Take ``entry``'s hours out again."""
        self._change(entry, -1.0, today=today)

    def _change(self, entry: HoursEntry, sign: float, *, today: date) -> None:
        end = entry.date_to or entry.date_from
        for year in range(entry.date_from.year, end.year + 1):
            share = _spread(entry, date(year, 1, 1), date(year, 12, 31))
            self.years[str(year)] = self.years.get(str(year), 0.0) + sign * share
        per_day = sign * entry.hours / ((end - entry.date_from).days + 1)
        day = max(entry.date_from, _window_start(today))
        while day <= end:
            key = day.isoformat()
            self.days[key] = self.days.get(key, 0.0) + per_day
            day += timedelta(days=1)

    def pruned_days(self, *, today: date) -> dict[str, float]:
        """Return the days from the start of ``today``'s 12-month window on."""
        first = _window_start(today).isoformat()
        return {d: h for d, h in self.days.items() if d >= first}

    def totals(self, engagements: Sequence[Engagement], *, today: date) -> HoursTotals:
        """Return the derived figures, as :func:`totals` computes them from every entry."""
        first, last = _window_start(today).isoformat(), today.isoformat()
        return HoursTotals(
            hours_last_12_months=round(sum(h for d, h in self.days.items() if first <= d <= last), 2),
            hours_by_year={y: round(h, 2) for y, h in sorted(self.years.items()) if abs(h) > 1e-9},
            years_of_engagement=years_of_engagement(engagements, today=today),
        )


def running_figures(entries: Iterable[HoursEntry], *, today: date) -> RunningFigures:
    """Return the running figures of ``entries`` (for a member whose figures were not kept yet)."""
    figures = RunningFigures(years={}, days={})
    for entry in entries:
        figures.add(entry, today=today)
    return figures


def engagement_periods(engagements: Iterable[Engagement], *, today: date) -> list[Period]:
    """Return the spans of engagement across organisations, overlaps merged (open ends run to today)."""
    spans = sorted((e.since, min(e.until or today, today)) for e in engagements if e.since <= today)
    merged: list[Period] = []
    for start, end in spans:
        if end < start:
            continue
        if merged and start <= merged[-1].end + timedelta(days=1):
            if end > merged[-1].end:
                merged[-1] = Period(merged[-1].start, end)
        else:
            merged.append(Period(start, end))
    return merged


def engagement_breaks(periods: Sequence[Period]) -> list[Period]:
    """Return the breaks between spans of engagement."""
    return [Period(a.end + timedelta(days=1), b.start - timedelta(days=1)) for a, b in itertools.pairwise(periods)]


def years_of_engagement(engagements: Iterable[Engagement], *, today: date) -> float:
    """Return the years engaged across organisations, overlaps counted once and breaks left out."""
    days = sum(p.days for p in engagement_periods(engagements, today=today))
    return round(days / DAYS_PER_YEAR, 2)


def totals(entries: Sequence[HoursEntry], engagements: Sequence[Engagement], *, today: date) -> HoursTotals:
    """Return the derived figures of a member."""
    return HoursTotals(
        hours_last_12_months=hours_last_12_months(entries, today=today),
        hours_by_year=hours_by_year(entries),
        years_of_engagement=years_of_engagement(engagements, today=today),
    )


# -- documents ----------------------------------------------------------------------------------


def member_document(
    *,
    member_id: str,
    ags: str,
    data: MemberCreate,
    engagements: list[Engagement],
    consent: Consent,
    now: datetime,
) -> dict[str, Any]:
    """Return a new member document (without outbox), revision 1."""
    doc: dict[str, Any] = {
        "_id": member_id,
        "municipality": ags,
        "revision": 1,
        "given_name": data.given_name,
        "family_name": data.family_name,
        "date_of_birth": data.date_of_birth.isoformat() if data.date_of_birth else None,
        "language": data.language,
        "status": data.status,
        "contact": data.contact.model_dump(mode="json"),
        "consent": consent.model_dump(mode="json"),
        "engagements": [e.model_dump(mode="json") for e in engagements],
        "juleica": data.juleica.model_dump(mode="json"),
        "external_refs": [r.model_dump(mode="json") for r in data.external_refs],
        "created_at": now,
        "updated_at": now,
    }
    return {**doc, **derived_keys(doc)}


def derived_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """Return the indexed lookup fields of a member document (duplicates, filters, external refs)."""
    dob = date.fromisoformat(doc["date_of_birth"]) if doc.get("date_of_birth") else None
    engagements = doc.get("engagements") or []
    return {
        "email_key": email_key((doc.get("contact") or {}).get("email")),
        "name_dob_key": name_dob_key(doc["given_name"], doc["family_name"], dob),
        "search": search_text(doc["given_name"], doc["family_name"]),
        "ext_keys": [f"{r['system']}:{r['id']}" for r in doc.get("external_refs") or []],
        "org_ids": sorted({e["organisation_id"] for e in engagements if e.get("organisation_id")}),
        "fields": sorted({e["field"] for e in engagements}),
    }


def snapshot(doc: dict[str, Any], member_totals: HoursTotals) -> MemberSnapshot:
    """Return the event snapshot of a member document."""
    return MemberSnapshot(
        member_id=doc["_id"],
        municipality=doc["municipality"],
        revision=doc["revision"],
        given_name=doc["given_name"],
        family_name=doc["family_name"],
        date_of_birth=doc.get("date_of_birth"),
        language=doc.get("language", "de"),
        status=doc.get("status", "active"),
        contact=Contact.model_validate(doc.get("contact") or {}),
        consent=Consent.model_validate(doc.get("consent") or {}),
        engagements=[Engagement.model_validate(e) for e in doc.get("engagements") or []],
        juleica=Juleica.model_validate(doc.get("juleica") or {}),
        external_refs=[ExternalRef.model_validate(r) for r in doc.get("external_refs") or []],
        totals=member_totals,
    )


def entry_from_document(doc: dict[str, Any]) -> HoursEntry:
    """Return the figures' view of an hours document."""
    return HoursEntry(
        hours=float(doc["hours"]),
        date_from=date.fromisoformat(doc["date_from"]),
        date_to=date.fromisoformat(doc["date_to"]) if doc.get("date_to") else None,
    )


def changed_fields(before: dict[str, Any], after: dict[str, Any], names: Iterable[str]) -> list[str]:
    """Return the names whose values differ between two documents."""
    return [n for n in names if before.get(n) != after.get(n)]


MEMBER_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "language",
    "status",
    "contact",
    "consent",
    "engagements",
    "juleica",
    "external_refs",
)


# -- practice examples (the network's exchange) ---------------------------------------------------

PRACTICE_TEXT_MAX = 4000
"""The longest a practice example's text parts may be (a short example, not a report)."""
PracticeExampleState = Literal["published", "withdrawn"]


class PracticeContact(_Model):
    """Who at the contact point answers questions about a practice example (a staff contact, not a member)."""

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    phone: str | None = Field(default=None, max_length=40)


class PracticeExampleCreate(_Model):
    """A practice example as staff publish it; the municipality's kind comes from its profile."""

    title: str = Field(min_length=3, max_length=200)
    field: Field_
    what_was_done: str = Field(min_length=1, max_length=PRACTICE_TEXT_MAX)
    what_it_took: str = Field(min_length=1, max_length=PRACTICE_TEXT_MAX)
    what_worked: str = Field(min_length=1, max_length=PRACTICE_TEXT_MAX)
    contact: PracticeContact


class PracticeExampleUpdate(_Model):
    """Changes to a practice example (only the fields sent)."""

    title: str | None = Field(default=None, min_length=3, max_length=200)
    field: Field_ | None = None
    what_was_done: str | None = Field(default=None, min_length=1, max_length=PRACTICE_TEXT_MAX)
    what_it_took: str | None = Field(default=None, min_length=1, max_length=PRACTICE_TEXT_MAX)
    what_worked: str | None = Field(default=None, min_length=1, max_length=PRACTICE_TEXT_MAX)
    contact: PracticeContact | None = None

    @model_validator(mode="after")
    def _no_field_set_to_null(self) -> PracticeExampleUpdate:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"these fields cannot be emptied: {', '.join(sorted(nulls))}")
        return self


PRACTICE_SEARCHED = ("title", "what_was_done", "what_it_took", "what_worked")
"""The parts of a practice example that the text search reads."""


def practice_search_text(doc: dict[str, Any]) -> str:
    """Return the folded text a practice example is searched by (title and its three parts, the field)."""
    return fold(" ".join(str(doc.get(name) or "") for name in (*PRACTICE_SEARCHED, "field")))


def search_words(query: str) -> list[str]:
    """Return the folded words of a search query (each must occur in a match), at most eight."""
    return list(dict.fromkeys(fold(query).split()))[:8]

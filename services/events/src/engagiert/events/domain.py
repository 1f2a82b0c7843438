"""Holds the recognition rules without I/O: member figures, invitation criteria, seats, honours, signed links."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engagiert.shared.contracts.members import MemberSnapshot
from engagiert.shared.contracts.recognition import HonourKind

# The expiring links are signed and checked in shared (notifications signs its unsubscribe links the same way).
from engagiert.shared.signing import MAX_TOKEN_LENGTH, CardKeyRing, LinkKeyRing, SignatureError, link_expiry
from engagiert.shared.signing import LinkError as LinkError
from engagiert.shared.signing import LinkFailure as LinkFailure
from engagiert.shared.signing import sign_link as sign_link
from engagiert.shared.signing import verify_link as verify_link

# -- the member read model ---------------------------------------------------------------------

SNAPSHOT_FIELDS = ("municipality", "revision", "given_name", "family_name", "date_of_birth", "status")


def read_model_fields(member: MemberSnapshot) -> dict[str, Any]:
    """Return what events keeps of a member snapshot: no contact, no consent, no external refs."""
    return {
        "municipality": member.municipality,
        "revision": member.revision,
        "given_name": member.given_name,
        "family_name": member.family_name,
        "date_of_birth": member.date_of_birth.isoformat() if member.date_of_birth else None,
        "status": member.status,
        "engagements": [
            {
                "engagement_id": e.engagement_id,
                "organisation_id": e.organisation_id,
                "organisation_name": e.organisation_name,
                "field": e.field,
                "since": e.since.isoformat(),
                "until": e.until.isoformat() if e.until else None,
            }
            for e in member.engagements
        ],
        "juleica": {
            "holder": member.juleica.holder,
            "expires_on": member.juleica.expires_on.isoformat() if member.juleica.expires_on else None,
        },
        "years_of_engagement_reported": member.totals.years_of_engagement,
    }


def hours_last_12_months(entries: Iterable[Mapping[str, Any]], today: date) -> float:
    """Return the hours of entries dated in the 12 months up to and including ``today``."""
    start = _minus_years(today, 1).isoformat()
    end = today.isoformat()
    return round(sum(float(e["hours"]) for e in entries if start < str(e["date"]) <= end), 2)


def member_hours_last_12_months(member: Mapping[str, Any], today: date) -> float:
    """Return a read-model member's hours of the 12 months up to and including ``today``.

    The read model keeps hours per day (``hours_by_day``, days of the window and later); a member
    written before that keeps its entries in ``hours``: both count.
    """
    start = _minus_years(today, 1).isoformat()
    end = today.isoformat()
    by_day = sum(float(h) for day, h in (member.get("hours_by_day") or {}).items() if start < day <= end)
    return round(by_day + hours_last_12_months(member.get("hours") or [], today), 2)


def window_start(today: date) -> str:
    """Return the last day before the 12 months up to ``today`` (days on or before it no longer count)."""
    return _minus_years(today, 1).isoformat()


def hours_by_year(entries: Iterable[Mapping[str, Any]]) -> dict[int, float]:
    """Return the hours per calendar year."""
    years: dict[int, float] = {}
    for e in entries:
        year = int(str(e["date"])[:4])
        years[year] = round(years.get(year, 0.0) + float(e["hours"]), 2)
    return years


def years_of_engagement(member: Mapping[str, Any], today: date) -> float:
    """Return the years since the member's earliest engagement began (or the registry's figure, if larger)."""
    starts = [date.fromisoformat(e["since"]) for e in member.get("engagements") or [] if e.get("since")]
    computed = calendar_years(min(starts), today) if starts else 0.0
    return max(computed, float(member.get("years_of_engagement_reported") or 0.0))


def calendar_years(start: date, today: date) -> float:
    """Return the years from ``start`` to ``today``: whole on each anniversary, a fraction in between."""
    if today <= start:
        return 0.0
    whole = age_on(start, today)
    anniversary = add_years(start, whole)
    return whole + (today - anniversary).days / 366


def age_on(date_of_birth: date, day: date) -> int:
    """Return the age in completed years on ``day``."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def _minus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def add_years(day: date, years: int) -> date:
    """Return ``day`` plus ``years`` (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


# -- invitation criteria -----------------------------------------------------------------------


class InvitationCriteria(BaseModel):
    """Whom to invite: every member who meets all the given conditions (or is named explicitly)."""

    model_config = ConfigDict(extra="forbid")

    min_hours_last_12_months: float | None = Field(default=None, ge=0)
    min_years: float | None = Field(default=None, ge=0)
    fields: list[str] = Field(default_factory=list, description="any of these fields of engagement")
    organisations: list[str] = Field(default_factory=list, description="any of these organisation ids")
    member_ids: list[str] = Field(default_factory=list, description="invited whatever the other criteria say")
    honour_kinds: list[HonourKind] = Field(default_factory=list, description="holders of any of these honours")
    include_paused: bool = False

    def has_filters(self) -> bool:
        """Return True when a condition besides explicit member ids is set."""
        return bool(
            self.min_hours_last_12_months is not None
            or self.min_years is not None
            or self.fields
            or self.organisations
            or self.honour_kinds
        )


def matches(
    member: Mapping[str, Any], criteria: InvitationCriteria, today: date, *, honour_holders: set[str] | None = None
) -> bool:
    """Return True when ``member`` is to be invited under ``criteria``."""
    if member.get("erased"):
        return False
    if member["_id"] in criteria.member_ids:
        return True
    if not criteria.has_filters():
        return False
    status = member.get("status", "active")
    if status == "left" or (status == "paused" and not criteria.include_paused):
        return False
    minimum = criteria.min_hours_last_12_months
    if minimum is not None and member_hours_last_12_months(member, today) < minimum:
        return False
    if criteria.min_years is not None and years_of_engagement(member, today) < criteria.min_years:
        return False
    engagements = member.get("engagements") or []
    if criteria.fields and not {e.get("field") for e in engagements} & set(criteria.fields):
        return False
    if criteria.organisations and not {e.get("organisation_id") for e in engagements} & set(criteria.organisations):
        return False
    return not (criteria.honour_kinds and (honour_holders is None or member["_id"] not in honour_holders))


# -- seats and the waitlist --------------------------------------------------------------------

InvitationStatus = Literal["invited", "waitlisted", "accepted", "declined", "withdrawn"]
OFFERED: tuple[InvitationStatus, ...] = ("invited", "accepted")


def seats_needed(guests: int) -> int:
    """Return the seats an accepted invitee takes: their own and their guests'."""
    return 1 + guests


def split_offers(candidates: Sequence[str], *, capacity: int, offered: int) -> tuple[list[str], list[str]]:
    """Split new invitees in order: as many get an offer as the capacity leaves, the rest wait."""
    free = max(capacity - offered, 0)
    return list(candidates[:free]), list(candidates[free:])


def reminder_at(rsvp_deadline: datetime, hours_before: float, now: datetime) -> datetime | None:
    """Return when to remind an invitee who has not answered, or None when that moment has passed."""
    at = rsvp_deadline - timedelta(hours=hours_before)
    return at if at > now else None


# -- signed links and codes --------------------------------------------------------------------


def sign_card(cards: CardKeyRing, *, subject: str, expires_at: datetime) -> str:
    """Return a card's verification code: a JWS (EdDSA) of the card's subject and expiry, with the key's id."""
    return cards.sign({"sub": subject, "exp": int(expires_at.timestamp())})


def verify_card_code(cards: CardKeyRing, links: LinkKeyRing | str, code: str, *, now: datetime) -> str:
    """Return the subject of a genuine, unexpired card code; raise :class:`LinkError` otherwise.

    Codes of three parts are Ed25519 JWS (any key of the card ring); codes of two parts were
    signed before, with HMAC under ``LINK_SECRET``, and still verify.
    """
    if len(code) > MAX_TOKEN_LENGTH:
        raise LinkError("malformed")
    if code.count(".") == 1:
        return verify_link(links, code, purpose="card", now=now)[0]
    try:
        claims = cards.verify(code)
    except SignatureError as exc:
        raise LinkError("forged" if exc.reason == "forged" else "malformed") from None
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not isinstance(expires, int):
        raise LinkError("malformed")
    if now >= link_expiry(str(expires)):
        raise LinkError("expired")
    return subject


# -- honours -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatedThreshold:
    """A state rule for the Ehrenamtskarte that applies from one day (inclusive) to another (exclusive)."""

    valid_from: date
    valid_until: date | None
    hours_per_week: float
    hours_per_year: float

    def applies_on(self, day: date) -> bool:
        """Return True when this rule is in force on ``day``."""
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)


EHRENAMTSKARTE_NRW: tuple[DatedThreshold, ...] = (
    DatedThreshold(date(2000, 1, 1), date(2026, 1, 1), hours_per_week=5, hours_per_year=250),
    DatedThreshold(date(2026, 1, 1), None, hours_per_week=4, hours_per_year=200),
)
"""State defaults of the Ehrenamtskarte NRW: 5 h/week or 250 h/year, from 2026 4 h/week or 200 h/year."""

JUBILAEUM_YEARS = 25
WEEKS_PER_YEAR = 52


class HonourRules(BaseModel):
    """A municipality's rules over the state defaults (``PUT .../honour-rules``)."""

    model_config = ConfigDict(extra="forbid")

    min_duration_years: float = Field(default=0, ge=0, le=50, description="years of engagement before a card")
    min_age: int = Field(default=16, ge=0, le=100)
    validity_years: int = Field(default=3, ge=1, le=10)
    juleica_shortcut: bool = Field(default=True, description="a valid Juleica qualifies for the Ehrenamtskarte")
    engagementnachweis_min_hours: float = Field(default=80, ge=0)
    hours_per_year_override: float | None = Field(default=None, ge=0, description="None: the state's dated rule")


def threshold_on(day: date, thresholds: Sequence[DatedThreshold] = EHRENAMTSKARTE_NRW) -> DatedThreshold:
    """Return the state rule in force on ``day``."""
    for rule in thresholds:
        if rule.applies_on(day):
            return rule
    return thresholds[-1]


@dataclass(frozen=True, slots=True)
class Eligibility:
    """An honour a member qualifies for, with the reason staff see."""

    kind: HonourKind
    reason: str


def _old_enough(member: Mapping[str, Any], min_age: int, today: date) -> bool:
    if min_age <= 0:
        return True
    dob = member.get("date_of_birth")
    return isinstance(dob, str) and age_on(date.fromisoformat(dob), today) >= min_age


def ehrenamtskarte_eligibility(member: Mapping[str, Any], rules: HonourRules, today: date) -> Eligibility | None:
    """Return the Ehrenamtskarte eligibility of ``member`` on ``today``, or None."""
    if member.get("status", "active") != "active" or not _old_enough(member, rules.min_age, today):
        return None
    juleica = member.get("juleica") or {}
    expires = juleica.get("expires_on")
    if rules.juleica_shortcut and juleica.get("holder") and (expires is None or expires >= today.isoformat()):
        return Eligibility("ehrenamtskarte", "Juleica-Inhaber/in")
    if years_of_engagement(member, today) < rules.min_duration_years:
        return None
    rule = threshold_on(today)
    per_year = rules.hours_per_year_override if rules.hours_per_year_override is not None else rule.hours_per_year
    hours = member_hours_last_12_months(member, today)
    if hours >= per_year or (rules.hours_per_year_override is None and hours / WEEKS_PER_YEAR >= rule.hours_per_week):
        return Eligibility("ehrenamtskarte", f"{hours:g} h in 12 Monaten (Schwelle {per_year:g} h)")
    return None


def eligible_honours(member: Mapping[str, Any], rules: HonourRules, today: date) -> list[Eligibility]:
    """Return every honour ``member`` qualifies for on ``today``."""
    if member.get("erased") or not member.get("given_name"):
        return []
    found: list[Eligibility] = []
    card = ehrenamtskarte_eligibility(member, rules, today)
    if card is not None:
        found.append(card)
    years = years_of_engagement(member, today)
    if years >= JUBILAEUM_YEARS and _old_enough(member, rules.min_age, today):
        found.append(Eligibility("jubilaeums-ehrenamtskarte", f"{years:g} Jahre Engagement"))
    hours = member_hours_last_12_months(member, today)
    if hours >= rules.engagementnachweis_min_hours and member.get("status", "active") == "active":
        found.append(Eligibility("engagementnachweis", f"{hours:g} h in 12 Monaten"))
    return found


def honour_valid_until(kind: HonourKind, rules: HonourRules, valid_from: date) -> date | None:
    """Return the end of a granted honour's validity (None: lifelong)."""
    if kind == "jubilaeums-ehrenamtskarte":
        return None
    if kind == "ehrenamtskarte":
        return add_years(valid_from, rules.validity_years) - timedelta(days=1)
    return None


HONOUR_TITLES: dict[str, str] = {
    "ehrenamtskarte": "Ehrenamtskarte NRW",
    "jubilaeums-ehrenamtskarte": "Jubiläums-Ehrenamtskarte NRW",
    "engagementnachweis": "Engagementnachweis NRW",
}
LIFELONG: tuple[HonourKind, ...] = ("jubilaeums-ehrenamtskarte",)


def renewal_id(member_id: str, kind: str, valid_until: str) -> str:
    """Return the id of the renewal proposal for a member's honour valid until ``valid_until`` (once per validity)."""
    return f"{member_id}:{kind}:r{valid_until}"


def renewal_valid_from(renews_from: date, today: date) -> date:
    """Return where a granted renewal starts: the day after the old validity, or today when that has passed."""
    return max(renews_from, today)


LIFELONG_CODE_EXPIRY = datetime(9999, 12, 31, tzinfo=UTC)


def card_subject(*, honour_id: str, kind: str, card_number: str, valid_until: date | None) -> str:
    """Return what a card's verification code signs."""
    return f"{honour_id}|{kind}|{card_number}|{valid_until.isoformat() if valid_until else 'lifelong'}"


def card_code_expiry(valid_until: date | None) -> datetime:
    """Return when a card's verification code stops verifying: the day after the card's last day."""
    if valid_until is None:
        return LIFELONG_CODE_EXPIRY
    return datetime.combine(valid_until + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

"""Unit tests of the registry's rules and derived figures (no I/O)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from engagiert.registry import domain
from engagiert.registry.config import RegistrySettings
from engagiert.registry.domain import HoursEntry, HoursIn, MemberCreate, Period
from engagiert.shared.contracts import Consent, Engagement


def _eng(since: str, until: str | None = None, field: str = "Sport") -> Engagement:
    return Engagement(
        engagement_id=domain.new_id("e"),
        field=field,  # type: ignore[arg-type]
        since=date.fromisoformat(since),
        until=date.fromisoformat(until) if until else None,
    )


def test_last_12_months_includes_today_and_excludes_the_day_a_year_ago() -> None:
    """An entry on the same day a year ago falls out; the day after it and today count."""
    today = date(2026, 11, 25)
    entries = [
        HoursEntry(1, date(2025, 11, 25)),
        HoursEntry(2, date(2025, 11, 26)),
        HoursEntry(4, today),
        HoursEntry(8, date(2026, 11, 26)),  # future entries are not in the last 12 months
    ]
    assert domain.hours_last_12_months(entries, today=today) == 6


def test_last_12_months_counts_a_period_pro_rata() -> None:
    """A 10-day period of 10 hours that half lies in the window counts 5 hours."""
    today = date(2026, 6, 30)
    entries = [HoursEntry(10, date(2025, 6, 26), date(2025, 7, 5))]
    assert domain.hours_last_12_months(entries, today=today) == 5


def test_last_12_months_on_29_february_reaches_back_to_1_march() -> None:
    """On a leap day the window starts on 1 March of the year before."""
    today = date(2028, 2, 29)
    entries = [HoursEntry(1, date(2027, 2, 28)), HoursEntry(2, date(2027, 3, 1))]
    assert domain.hours_last_12_months(entries, today=today) == 2


def test_hours_by_year_splits_a_period_across_new_year_by_days() -> None:
    """A period of 4 days (2 in each year) with 8 hours gives 4 hours to each calendar year."""
    entries = [HoursEntry(8, date(2025, 12, 30), date(2026, 1, 2)), HoursEntry(1.5, date(2026, 3, 1))]
    assert domain.hours_by_year(entries) == {"2025": 4.0, "2026": 5.5}


def test_hours_by_year_of_nothing_is_empty() -> None:
    """A member without hours has no years."""
    assert domain.hours_by_year([]) == {}


def test_years_of_engagement_count_overlaps_once_and_leave_out_breaks() -> None:
    """Two overlapping engagements and a later one after a break: the break is not counted."""
    today = date(2026, 1, 1)
    engagements = [
        _eng("2010-01-01", "2014-12-31"),
        _eng("2012-01-01", "2015-12-31", field="Kultur"),
        _eng("2020-01-01", None, field="Soziales"),
    ]
    periods = domain.engagement_periods(engagements, today=today)
    assert periods == [Period(date(2010, 1, 1), date(2015, 12, 31)), Period(date(2020, 1, 1), today)]
    assert domain.engagement_breaks(periods) == [Period(date(2016, 1, 1), date(2019, 12, 31))]
    assert domain.years_of_engagement(engagements, today=today) == pytest.approx(12.0, abs=0.02)  # 6 + 6 years


def test_adjacent_engagements_are_one_period_without_break() -> None:
    """An engagement that starts the day after another ends continues it."""
    today = date(2026, 1, 1)
    periods = domain.engagement_periods(
        [_eng("2020-01-01", "2020-12-31"), _eng("2021-01-01", "2021-12-31")], today=today
    )
    assert periods == [Period(date(2020, 1, 1), date(2021, 12, 31))]
    assert domain.engagement_breaks(periods) == []


def test_future_engagements_do_not_count_yet() -> None:
    """An engagement that starts after today adds no years."""
    assert domain.years_of_engagement([_eng("2030-01-01")], today=date(2026, 1, 1)) == 0


def test_duplicate_keys_ignore_case_and_blanks() -> None:
    """E-mail and name keys fold case and surrounding or repeated blanks; no birth date, no name key."""
    assert domain.email_key(" Anna.Schmidt@Example.DE ") == "anna.schmidt@example.de"
    key = domain.name_dob_key(" Anna ", "von  der Heide", date(1980, 5, 1))
    assert key == domain.name_dob_key("anna", "Von der Heide", date(1980, 5, 1))
    assert domain.name_dob_key("Anna", "Schmidt", None) is None


def test_engagement_changes_name_started_and_ended() -> None:
    """A new engagement is started; one that gained an end date is ended."""
    a = _eng("2020-01-01")
    b = _eng("2021-01-01")
    a_ended = a.model_copy(update={"until": date(2025, 1, 1)})
    started, ended = domain.engagement_changes([a], [a_ended, b])
    assert started == [b]
    assert ended == [a_ended]


def test_hours_refuse_a_period_that_ends_before_it_starts() -> None:
    """A period's end before its start is invalid input."""
    with pytest.raises(ValidationError):
        HoursIn(hours=2, date_from=date(2026, 2, 2), date_to=date(2026, 2, 1))
    with pytest.raises(ValidationError):
        HoursIn(hours=0, date_from=date(2026, 2, 2))


def test_member_document_carries_lookup_keys() -> None:
    """A new member document has revision 1 and the keys duplicates and filters use."""
    data = MemberCreate.model_validate(
        {
            "given_name": "Anna",
            "family_name": "Schmidt",
            "date_of_birth": "1980-05-01",
            "contact": {"email": "Anna@Example.de"},
            "external_refs": [{"system": "vereinsflieger", "id": "42"}],
        }
    )
    doc = domain.member_document(
        member_id="m-1",
        ags="05774032",
        data=data,
        engagements=[],
        consent=domain.consent_from(None, now=None),  # type: ignore[arg-type]
        now=None,  # type: ignore[arg-type]
    )
    assert doc["revision"] == 1
    assert doc["email_key"] == "anna@example.de"
    assert doc["ext_keys"] == ["vereinsflieger:42"]
    assert doc["search"] == "anna schmidt"


NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_a_system_may_narrow_consent_and_grant_only_what_was_never_withdrawn() -> None:
    """Inbound consent: narrowing always applies; a new channel only by own reference and if not withdrawn."""
    current = Consent(channels=["email", "post"], given_at=NOW, source="Formular")
    narrowed = domain.inbound_consent(current, ["email"], blocked=[], may_grant=False, source="x", now=NOW)
    assert narrowed is not None
    assert narrowed.channels == ["email"]
    assert narrowed.source == "Formular"
    assert domain.inbound_consent(current, ["post", "email"], blocked=[], may_grant=True, source="x", now=NOW) is None
    wider = domain.inbound_consent(current, ["email", "phone"], blocked=[], may_grant=True, source="x", now=NOW)
    assert wider is not None
    assert wider.channels == ["email", "phone"]
    blocked = domain.inbound_consent(
        current, ["email", "phone"], blocked=["phone"], may_grant=True, source="x", now=NOW
    )
    assert blocked is not None
    assert blocked.channels == ["email"], "phone was withdrawn: the system cannot grant it"
    assert (
        domain.inbound_consent(current, ["email", "post", "phone"], blocked=[], may_grant=False, source="x", now=NOW)
        is None
    )
    none = domain.inbound_consent(current, [], blocked=[], may_grant=True, source="x", now=NOW)
    assert none is not None
    assert none.withdrawn_at == NOW


def test_an_unsubscribe_narrows_consent_to_the_other_channels_and_the_last_one_is_a_withdrawal() -> None:
    """Withdrawing e-mail keeps post; withdrawing what is not given changes nothing; nothing left: withdrawn."""
    both = Consent(channels=["email", "post"], given_at=NOW, source="Formular")
    left = domain.narrowed(both, without=["email"], now=NOW)
    assert left is not None
    assert (left.channels, left.withdrawn_at, left.given_at) == (["post"], None, NOW)
    assert domain.narrowed(left, without=["email"], now=NOW) is None, "already withdrawn: no change"
    gone = domain.narrowed(Consent(channels=["email"], given_at=NOW), without=["email"], now=NOW)
    assert gone is not None
    assert (gone.channels, gone.withdrawn_at) == ([], NOW)
    assert domain.narrowed(gone, without=None, now=NOW) is None
    assert domain.narrowed(both, without=None, now=NOW) == domain.withdrawn(both, now=NOW)


def test_withdrawn_channels_follow_withdrawals_and_staff_grants() -> None:
    """A full withdrawal blocks every channel; staff granting one unblocks that one; dropping one blocks it."""
    gone = domain.withdrawn(Consent(channels=["email"], given_at=NOW), now=NOW)
    assert domain.withdrawn_channels({"consent": gone.model_dump(mode="json")}) == ["email", "post", "phone"]
    regranted = Consent(channels=["post"], given_at=NOW)
    assert domain.withdrawn_after(["email", "post", "phone"], gone, regranted) == ["email", "phone"]
    dropped = Consent(channels=["email"], given_at=NOW)
    assert domain.withdrawn_after([], Consent(channels=["email", "post"]), dropped) == ["post"]


def test_erased_marks_are_salted_hashes_per_municipality() -> None:
    """The same identity key hashes alike under one salt and municipality, differently under another salt or AGS."""
    keys = domain.identity_keys(email="ole@example.org", name_dob=None, ext_keys=["agentur:1"])
    assert keys == ["e:ole@example.org", "x:agentur:1"]
    salt = b"s" * 32
    marks = domain.erased_marks("05774032", keys, salt=salt)
    assert len(marks) == 2
    assert all(len(m) == 64 and "ole" not in m for m in marks)
    assert marks == domain.erased_marks("05774032", keys, salt=salt)
    assert not set(marks) & set(domain.erased_marks("05711000", keys, salt=salt))
    assert not set(marks) & set(domain.erased_marks("05774032", keys, salt=b"t" * 32))


def test_production_needs_an_erasure_salt_of_its_own_of_32_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGISTRY_ERASURE_SALT: the local default and short salts refuse to start in production."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_JWKS_URL", "https://idp.example/realms/x/protocol/openid-connect/certs")
    monkeypatch.setenv("AUTH_ISSUER", "https://idp.example/realms/x")
    monkeypatch.setenv("AUTH_LOCAL_KEY", "")
    monkeypatch.setenv("LINK_SECRET", "s3cr3t-of-the-operator-" + "x" * 32)
    monkeypatch.setenv("MEMBER_KEYS_TOKEN", "t0ken-of-the-operator-" + "x" * 32)
    with pytest.raises(ValidationError, match="REGISTRY_ERASURE_SALT"):
        RegistrySettings()
    monkeypatch.setenv("REGISTRY_ERASURE_SALT", "too-short")
    with pytest.raises(ValidationError, match="REGISTRY_ERASURE_SALT"):
        RegistrySettings()
    monkeypatch.setenv("REGISTRY_ERASURE_SALT", "x" * 32)
    assert RegistrySettings().erasure_salt.get_secret_value() == "x" * 32


def test_running_figures_give_the_totals_of_every_entry() -> None:
    """Entries added one by one (days, periods, across years) give what the totals from all entries give."""
    rng = random.Random(16)
    today = date(2026, 11, 30)
    entries: list[domain.HoursEntry] = []
    figures = domain.RunningFigures(years={}, days={})
    for _ in range(400):
        start = today - timedelta(days=rng.randrange(0, 4 * 365))
        end = start + timedelta(days=rng.choice([0, 0, 0, 6, 40, 400]))
        entry = domain.HoursEntry(hours=rng.choice([1, 2.5, 3, 7.25]), date_from=start, date_to=end)
        entries.append(entry)
        figures.add(entry, today=today)
        assert figures.totals([], today=today) == domain.totals(entries, [], today=today)
    later = today + timedelta(days=45)  # the window moved on since the last write
    kept = domain.RunningFigures(years=figures.years, days=figures.pruned_days(today=today))
    assert kept.totals([], today=later) == domain.totals(entries, [], today=later)


def test_running_figures_take_an_entry_out_again() -> None:
    """Removing an entry leaves the figures of the others (its year disappears when it was the only one)."""
    today = date(2026, 11, 30)
    kept = domain.HoursEntry(hours=4, date_from=date(2026, 3, 1))
    gone = domain.HoursEntry(hours=9, date_from=date(2024, 12, 20), date_to=date(2026, 1, 10))
    figures = domain.running_figures([kept, gone], today=today)
    figures.remove(gone, today=today)
    assert figures.totals([], today=today) == domain.totals([kept], [], today=today)

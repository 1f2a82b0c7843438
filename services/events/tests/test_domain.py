"""Unit tests of the recognition rules: figures, criteria, seats, signed links, honour edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engagiert.events import domain
from engagiert.events.domain import HonourRules, InvitationCriteria

SECRET = "test-secret"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def member(
    *,
    hours: float = 0,
    on: date = date(2025, 12, 1),
    since: date = date(2020, 1, 1),
    dob: str | None = "1990-01-01",
    **extra: Any,
) -> dict[str, Any]:
    """Return a read-model member with one hours entry and one engagement."""
    return {
        "_id": extra.pop("_id", "m1"),
        "municipality": "05774032",
        "given_name": "Erika",
        "family_name": "Muster",
        "date_of_birth": dob,
        "status": extra.pop("status", "active"),
        "engagements": [
            {
                "engagement_id": "e1",
                "organisation_id": "o1",
                "field": "Sport",
                "since": since.isoformat(),
                "until": None,
            }
        ],
        "juleica": extra.pop("juleica", {"holder": False, "expires_on": None}),
        "hours": [{"entry_id": "h1", "date": on.isoformat(), "hours": hours}] if hours else [],
        **extra,
    }


def kinds(m: dict[str, Any], rules: HonourRules, today: date) -> set[str]:
    """Return the honour kinds ``m`` qualifies for."""
    return {e.kind for e in domain.eligible_honours(m, rules, today)}


# -- figures -----------------------------------------------------------------------------------


def test_hours_last_12_months_counts_today_and_excludes_the_day_a_year_ago() -> None:
    """An entry on the same day one year ago falls out; today's counts."""
    entries = [
        {"date": "2025-03-01", "hours": 5},
        {"date": "2025-03-02", "hours": 7},
        {"date": "2026-03-01", "hours": 1},
    ]
    assert domain.hours_last_12_months(entries, date(2026, 3, 1)) == 8


def test_hours_by_year_sums_per_calendar_year() -> None:
    """Hours are summed per calendar year."""
    entries = [
        {"date": "2025-12-31", "hours": 2},
        {"date": "2026-01-01", "hours": 3},
        {"date": "2026-05-01", "hours": 4},
    ]
    assert domain.hours_by_year(entries) == {2025: 2, 2026: 7}


def test_age_turns_on_the_birthday() -> None:
    """A member is 16 on their 16th birthday, 15 the day before."""
    assert domain.age_on(date(2010, 3, 1), date(2026, 2, 28)) == 15
    assert domain.age_on(date(2010, 3, 1), date(2026, 3, 1)) == 16


# -- Ehrenamtskarte thresholds around the 2026 change ------------------------------------------


@pytest.mark.parametrize(
    ("hours", "today", "eligible"),
    [
        (249, date(2025, 12, 31), False),
        (250, date(2025, 12, 31), True),
        (200, date(2025, 12, 31), False),
        (199, date(2026, 1, 1), False),
        (200, date(2026, 1, 1), True),
        (249, date(2026, 6, 1), True),
    ],
)
def test_ehrenamtskarte_threshold_is_dated(hours: float, today: date, eligible: bool) -> None:
    """250 h/year before 2026-01-01, 200 h/year from then on, both inclusive."""
    m = member(hours=hours, on=today - timedelta(days=10))
    assert ("ehrenamtskarte" in kinds(m, HonourRules(), today)) is eligible


def test_threshold_on_picks_the_rule_in_force() -> None:
    """The state rule switches on 2026-01-01."""
    assert domain.threshold_on(date(2025, 12, 31)).hours_per_year == 250
    assert domain.threshold_on(date(2026, 1, 1)).hours_per_year == 200
    assert domain.threshold_on(date(2026, 1, 1)).hours_per_week == 4


@pytest.mark.parametrize(("dob", "eligible"), [("2010-03-02", False), ("2010-03-01", True), (None, False)])
def test_ehrenamtskarte_minimum_age_16(dob: str | None, eligible: bool) -> None:
    """15-year-olds do not qualify, 16-year-olds do; an unknown age does not."""
    m = member(hours=300, on=date(2026, 2, 1), dob=dob)
    assert ("ehrenamtskarte" in kinds(m, HonourRules(min_age=16), date(2026, 3, 1))) is eligible


@pytest.mark.parametrize(("since", "eligible"), [(date(2024, 3, 2), False), (date(2024, 3, 1), True)])
def test_ehrenamtskarte_minimum_duration_of_the_municipality(since: date, eligible: bool) -> None:
    """A municipality's two-year minimum duration holds back a member engaged for less."""
    m = member(hours=300, on=date(2026, 2, 1), since=since)
    assert ("ehrenamtskarte" in kinds(m, HonourRules(min_duration_years=2), date(2026, 3, 1))) is eligible


def test_juleica_shortcut_qualifies_without_hours_unless_switched_off() -> None:
    """A valid Juleica qualifies for the card; a municipality may switch the shortcut off."""
    m = member(juleica={"holder": True, "expires_on": "2027-01-01"})
    assert "ehrenamtskarte" in kinds(m, HonourRules(), date(2026, 3, 1))
    assert "ehrenamtskarte" not in kinds(m, HonourRules(juleica_shortcut=False), date(2026, 3, 1))
    expired = member(juleica={"holder": True, "expires_on": "2026-01-01"})
    assert "ehrenamtskarte" not in kinds(expired, HonourRules(), date(2026, 3, 1))


def test_municipal_hours_override_replaces_the_state_rule() -> None:
    """A municipality may ask for more hours than the state."""
    m = member(hours=250, on=date(2026, 2, 1))
    assert "ehrenamtskarte" not in kinds(m, HonourRules(hours_per_year_override=300), date(2026, 3, 1))


@pytest.mark.parametrize(("since", "eligible"), [(date(2001, 3, 2), False), (date(2001, 3, 1), True)])
def test_jubilaeum_needs_25_years(since: date, eligible: bool) -> None:
    """The Jubiläums-Ehrenamtskarte needs 25 years of engagement and is lifelong."""
    m = member(since=since)
    assert ("jubilaeums-ehrenamtskarte" in kinds(m, HonourRules(), date(2026, 3, 1))) is eligible
    assert domain.honour_valid_until("jubilaeums-ehrenamtskarte", HonourRules(), date(2026, 3, 1)) is None


def test_card_validity_follows_the_municipality() -> None:
    """A card granted on 1 March 2026 for 2 years is valid through 28 February 2028."""
    until = domain.honour_valid_until("ehrenamtskarte", HonourRules(validity_years=2), date(2026, 3, 1))
    assert until == date(2028, 2, 29)


def test_erased_or_left_members_are_not_proposed() -> None:
    """Erased members are never proposed; members who left get no card."""
    assert (
        domain.eligible_honours(member(hours=500, on=date(2026, 2, 1), erased=True), HonourRules(), date(2026, 3, 1))
        == []
    )
    left = member(hours=500, on=date(2026, 2, 1), status="left")
    assert "ehrenamtskarte" not in kinds(left, HonourRules(), date(2026, 3, 1))


# -- criteria ----------------------------------------------------------------------------------


def test_criteria_combine_hours_years_fields_and_organisations() -> None:
    """A member matches only when every given condition holds; explicit ids always match."""
    m = member(hours=50, on=date(2026, 2, 1), since=date(2020, 1, 1))
    today = date(2026, 3, 1)
    assert domain.matches(m, InvitationCriteria(min_hours_last_12_months=50, min_years=6, fields=["Sport"]), today)
    assert not domain.matches(m, InvitationCriteria(min_hours_last_12_months=50.5), today)
    assert not domain.matches(m, InvitationCriteria(min_years=7), today)
    assert not domain.matches(m, InvitationCriteria(fields=["Kultur"]), today)
    assert not domain.matches(m, InvitationCriteria(organisations=["o2"]), today)
    assert domain.matches(m, InvitationCriteria(organisations=["o1"]), today)
    assert not domain.matches(m, InvitationCriteria(), today)
    assert domain.matches(m, InvitationCriteria(member_ids=["m1"]), today)
    assert not domain.matches(m, InvitationCriteria(honour_kinds=["ehrenamtskarte"]), today, honour_holders=set())
    assert domain.matches(m, InvitationCriteria(honour_kinds=["ehrenamtskarte"]), today, honour_holders={"m1"})


def test_split_offers_fills_the_capacity_then_waitlists_in_order() -> None:
    """New invitees get offers while the capacity lasts; the rest wait in the given order."""
    assert domain.split_offers(["a", "b", "c", "d"], capacity=5, offered=3) == (["a", "b"], ["c", "d"])
    assert domain.split_offers(["a"], capacity=2, offered=5) == ([], ["a"])
    assert domain.seats_needed(2) == 3


# -- signed links ------------------------------------------------------------------------------


def test_signed_link_round_trips() -> None:
    """A fresh link gives back its subject."""
    token = domain.sign_link(SECRET, purpose="rsvp", subject="ev1:m1", expires_at=NOW + timedelta(days=1))
    assert domain.verify_link(SECRET, token, purpose="rsvp", now=NOW)[0] == "ev1:m1"


def test_forged_altered_expired_and_cross_purpose_links_are_refused() -> None:
    """A link signed with another key, altered, expired or meant for another purpose is refused."""
    token = domain.sign_link(SECRET, purpose="rsvp", subject="ev1:m1", expires_at=NOW + timedelta(days=1))
    forged = domain.sign_link("other", purpose="rsvp", subject="ev1:m1", expires_at=NOW + timedelta(days=1))
    other_subject = domain.sign_link(SECRET, purpose="rsvp", subject="ev1:m2", expires_at=NOW + timedelta(days=1))
    altered = other_subject.split(".")[0] + "." + token.split(".")[1]
    cases = {
        forged: "forged",
        altered: "forged",
        token[:-1] + ("A" if token[-1] != "A" else "B"): "forged",
        "garbage": "malformed",
        "a.b.c": "malformed",
    }
    for bad, reason in cases.items():
        with pytest.raises(domain.LinkError) as err:
            domain.verify_link(SECRET, bad, purpose="rsvp", now=NOW)
        assert err.value.reason == reason, bad
    with pytest.raises(domain.LinkError) as err:
        domain.verify_link(SECRET, token, purpose="rsvp", now=NOW + timedelta(days=1))
    assert err.value.reason == "expired"
    with pytest.raises(domain.LinkError) as err:
        domain.verify_link(SECRET, token, purpose="card", now=NOW)
    assert err.value.reason == "forged"


def test_a_reminder_goes_out_the_given_hours_before_the_deadline_unless_that_moment_has_passed() -> None:
    """72 h before a deadline five days away is in two days; with only two days left there is no reminder."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    deadline = now + timedelta(days=5)
    assert domain.reminder_at(deadline, 72, now) == now + timedelta(days=2)
    assert domain.reminder_at(now + timedelta(hours=72), 72, now) is None
    assert domain.reminder_at(now + timedelta(hours=72, seconds=1), 72, now) == now + timedelta(seconds=1)
    assert domain.reminder_at(now + timedelta(days=2), 72, now) is None


def test_a_granted_renewal_starts_the_day_after_the_old_card_or_today_when_that_passed() -> None:
    """Renewing before expiry leaves no gap; granting it late starts today."""
    assert domain.renewal_valid_from(date(2031, 8, 31), date(2031, 7, 1)) == date(2031, 8, 31)
    assert domain.renewal_valid_from(date(2031, 8, 31), date(2031, 9, 5)) == date(2031, 9, 5)
    assert domain.renewal_id("m1", "ehrenamtskarte", "2031-08-30") == "m1:ehrenamtskarte:r2031-08-30"
    assert domain.honour_valid_until("jubilaeums-ehrenamtskarte", HonourRules(), date(2026, 1, 1)) is None


def test_hours_per_day_count_in_the_window_with_entries_kept_from_before() -> None:
    """The day sums of the read model and the entries of a member written before them both count, by date."""
    member = {
        "hours_by_day": {"2025-03-01": 5, "2025-03-02": 7, "2026-03-01": 1, "2026-04-01": 2},
        "hours": [{"entry_id": "h0", "date": "2026-02-01", "hours": 10}],
    }
    assert domain.member_hours_last_12_months(member, date(2026, 3, 1)) == 1 + 7 + 10
    assert domain.member_hours_last_12_months({}, date(2026, 3, 1)) == 0

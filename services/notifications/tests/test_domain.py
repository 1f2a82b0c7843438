"""Unit tests of the rules: suppression, delivery ids, backoff, the unknown-member hold (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engagiert.notifications import domain


def contact(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "_id": "m1",
        "municipality": "05774032",
        "status": "active",
        "email": "e@example.org",
        "consent_channels": ["email"],
        "erased": False,
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (contact(), None),
        (None, "unknown-member"),
        (contact(municipality="05711000"), "unknown-member"),
        (contact(erased=True), "member-erased"),
        (contact(status="left"), "member-left"),
        (contact(consent_channels=["post"]), "no-consent"),
        (contact(email=None), "no-address"),
    ],
)
def test_suppression_reason_names_why_a_message_is_not_sent(doc: dict | None, expected: str | None) -> None:
    """A message is sent only to a known, active, consenting member of the same municipality with an address."""
    assert domain.suppression_reason(doc, municipality="05774032", channel="email") == expected


def test_delivery_id_is_stable_per_request_and_differs_between_requests() -> None:
    """The same request event id always gives the same delivery id (idempotency)."""
    assert domain.delivery_id_for("a") == domain.delivery_id_for("a") != domain.delivery_id_for("b")


def test_retry_delay_doubles_up_to_the_maximum() -> None:
    """Backoff doubles per attempt and stops at the maximum."""
    delays = [domain.retry_delay(n, base=1, maximum=5) for n in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (1, 2, 4, 5)]


def test_unknown_member_is_held_only_for_the_grace_period() -> None:
    """A request for an unknown member waits for the grace period, then not."""
    now = datetime.now(UTC)
    assert domain.holds_for_unknown_member(now - timedelta(seconds=10), now, 60)
    assert not domain.holds_for_unknown_member(now - timedelta(seconds=61), now, 60)

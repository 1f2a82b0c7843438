"""Unit tests of pages 5-8 that need no stack: criteria and event forms, waitlist order, texts, templates."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams

from engagiert.console import clients
from engagiert.console.api import events, letters
from engagiert.console.forms import FormErrors
from engagiert.console.i18n import Translator, catalogue
from engagiert.console.rendering import templates

SOURCES = Path(__file__).parents[1] / "src" / "engagiert" / "console"
_PY_KEY = re.compile(r"""["']((?:events|honours|letters|network)\.[a-z0-9_-]+)["']""")


def test_every_text_id_of_pages_5_to_8_exists() -> None:
    """A text id written in the modules of pages 5-8 is in the catalogue (prefixes completed at run time aside)."""
    used: set[str] = set()
    for name in ("events", "honours", "letters", "network"):
        used |= set(_PY_KEY.findall((SOURCES / "api" / f"{name}.py").read_text(encoding="utf-8")))
    used = {k for k in used if not k.endswith("_") and not k.endswith(".html")}
    assert used
    assert not sorted(k for k in used if k not in catalogue())


def test_criteria_read_german_decimals_and_lists() -> None:
    """ "12,5" is 12.5 hours; fields and organisations are lists; paused members only when ticked."""
    criteria, form = events._criteria(
        QueryParams("min_hours_last_12_months=12,5&fields=Sport&fields=Kultur&organisations=o1&include_paused=yes")
    )
    assert criteria == {
        "fields": ["Sport", "Kultur"],
        "organisations": ["o1"],
        "honour_kinds": [],
        "include_paused": True,
        "min_hours_last_12_months": 12.5,
    }
    assert form["include_paused"] == ["yes"]
    assert events._has_filters(criteria)
    assert not events._has_filters(events._criteria(QueryParams("include_paused=yes"))[0])
    # Text that is no number goes to the service as it is: its refusal lands on the field.
    assert events._criteria(QueryParams("min_years=viele"))[0]["min_years"] == "viele"


def test_the_criteria_query_round_trips() -> None:
    """The confirm link carries the same criteria as the form."""
    _, form = events._criteria(QueryParams("min_years=3&fields=Sport&fields=Kultur"))
    again, _ = events._criteria(QueryParams(events._criteria_query(form)))
    assert again["fields"] == ["Sport", "Kultur"]
    assert again["min_years"] == 3.0


def _event(**changes: Any) -> clients.RecognitionEvent:
    data: dict[str, Any] = {
        "id": "e1",
        "kind": "Feierstunde",
        "title": "Feier",
        "starts_at": datetime(2026, 12, 5, 17, 0, tzinfo=UTC),
        "venue": "Rathaus",
        "capacity": 100,
        "guests_per_invitee": 1,
        "rsvp_deadline": datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
        "status": "scheduled",
    }
    return clients.RecognitionEvent.model_validate({**data, **changes})


def test_an_edit_sends_only_what_changed() -> None:
    """Berlin local times equal to the stored UTC times are no change; a new capacity is."""
    body = {
        "title": "Feier",
        "starts_at": events._aware("2026-12-05T18:00"),  # 17:00 UTC in winter
        "venue": "Rathaus",
        "capacity": 120,
        "guests_per_invitee": 1,
        "rsvp_deadline": events._aware("2026-12-01T12:00"),
    }
    assert events._changes(body, _event()) == {"capacity": 120}


def test_the_deadline_rule_lands_on_the_deadline_field() -> None:
    """The events service's model error about the deadline is shown at the deadline, in German."""
    exc = clients.ServiceError(
        "events",
        422,
        {
            "errors": [
                {
                    "loc": ["body"],
                    "msg": "Value error, rsvp_deadline must not be after starts_at",
                    "type": "value_error",
                }
            ]
        },
    )
    found = events._event_errors(exc)
    assert found.fields == {"rsvp_deadline": ["events.deadline_after_start"]}
    assert Translator("de")("events.deadline_after_start").startswith("Die Antwortfrist")


def test_waitlist_places_follow_the_issue_order() -> None:
    """Place 1 is the waitlisted invitation issued first; others have no place."""
    invitations = [
        clients.Invitation(id="a", event_id="e", member_id="m1", status="accepted", seq=1),
        clients.Invitation(id="c", event_id="e", member_id="m3", status="waitlisted", seq=3, waitlist_position=3),
        clients.Invitation(id="b", event_id="e", member_id="m2", status="waitlisted", seq=2, waitlist_position=2),
    ]
    assert events._waitlist_ranks(invitations) == {"b": 1, "c": 2}


def test_a_state_threshold_shows_its_last_day_inclusive() -> None:
    """The rule that ends before 1 January 2026 is shown as valid until 31 December 2025."""
    rule = clients.StateThreshold(
        valid_from=date(2000, 1, 1), valid_until=date(2026, 1, 1), hours_per_week=5, hours_per_year=250
    )
    assert rule.last_day == date(2025, 12, 31)
    assert rule.applies_on(date(2025, 12, 31))
    assert not rule.applies_on(date(2026, 1, 1))
    assert clients.StateThreshold(valid_from=date(2026, 1, 1), hours_per_week=4, hours_per_year=200).last_day is None


def test_every_template_preview_sends_parameters_its_letter_contract_accepts() -> None:
    """Each kind's preview parameters pass the kind's letter contract (a mismatch was a 422 in the browser)."""
    from engagiert.shared.contracts.letters import letter_params

    for lang in ("de", "en"):
        for kind in letters.KINDS:
            params = letters.sample_params(kind, lang)
            assert params, (lang, kind)
            letter_params(kind, params)


def _render(template: str, **context: Any) -> str:
    base = {
        "lang": "de",
        "t": Translator("de"),
        "nav": (),
        "user": type("U", (), {"can_write": True, "name": "Test", "is_network_admin": False})(),
        "tenant": type("T", (), {"ags": "05774032", "name": "Paderborn"})(),
        "csrf_token": "x",
        "flash": None,
        "path": "/",
        "full_path": "/",
        "switch_choices": [],
        "errors": FormErrors(),
    }
    return templates.env.get_template(template).render({**base, **context})


def test_the_preview_fragment_states_the_count_and_links_the_confirm_step() -> None:
    """The live count says how many match and offers the confirm step with the same criteria."""
    preview = clients.InvitationPreview(
        matching=3,
        would_invite=2,
        would_waitlist=1,
        sample=[clients.PreviewMember(member_id="m1", given_name="Anna", family_name="Schmidt")],
    )
    html = _render("events/_preview.html", event=_event(), preview=preview, query="min_years=3", asked=True)
    assert "3 Mitglieder passen." in html
    assert "/m/05774032/events/e1/invite/confirm?min_years=3" in html
    assert "3 Einladungen versenden …" in html
    assert "Schmidt, Anna" in html
    assert "Wählen Sie mindestens eine Bedingung." in _render(
        "events/_preview.html", event=_event(), preview=None, query="", asked=False
    )


def test_the_check_in_row_renders_alone_for_htmx() -> None:
    """The row htmx swaps in after a tap renders on its own (with its form's CSRF field) and brings the count along."""
    invitation = clients.Invitation(
        id="e1:m1", event_id="e1", member_id="m1", status="accepted", guests=1, attended=True
    )
    html = _render(
        "events/_checkin_row.html",
        event_id="e1",
        invitation=invitation,
        name="Schmidt, Anna",
        q="Anna",
        accepted=3,
        present=1,
        oob=True,
    )
    assert "✓ da" in html
    assert 'name="csrf_token" value="x"' in html
    assert 'id="checkin-count" class="lead" hx-swap-oob="true"' in html
    assert "1 von 3 Zugesagten sind da." in html

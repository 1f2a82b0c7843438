"""Unit tests of the templates' rendering: every kind and language, escaping, unknown kinds (no I/O)."""

from __future__ import annotations

import pytest

from engagiert.notifications import domain
from engagiert.notifications.rendering import Renderer, UnknownTemplate
from engagiert.shared.contracts.letters import LETTERS, InvitationLetter

BRANDING = {"name": "Stadt Paderborn", "signature": "Anlaufstelle Ehrenamt", "logo_url": "https://example.org/l.png"}
MEMBER = {"given_name": "Erika", "family_name": "Mustermann"}


@pytest.mark.parametrize("name", domain.TEMPLATE_NAMES)
@pytest.mark.parametrize("language", domain.LANGUAGES)
def test_every_template_renders_in_every_language(name: str, language: str) -> None:
    """Each kind has a subject, a text and an HTML body with the branding, in German and English."""
    msg = Renderer().render(
        name, language=language, params=LETTERS[name].example().to_params(), member=MEMBER, branding=BRANDING
    )
    assert msg.subject
    assert "\n" not in msg.subject
    assert "Stadt Paderborn" in msg.text
    assert "Stadt Paderborn" in msg.html
    assert "Erika" in msg.text
    assert f'lang="{language}"' in msg.html


def test_html_escapes_parameters_and_text_keeps_them() -> None:
    """A parameter cannot inject markup into the HTML part."""
    msg = Renderer().render(
        "invitation",
        language="de",
        params=InvitationLetter.example().to_params() | {"event_title": "<script>x</script>"},
        member=MEMBER,
        branding=BRANDING,
    )
    assert "<script>" not in msg.html
    assert "&lt;script&gt;" in msg.html
    assert "<script>x</script>" in msg.text
    assert msg.subject.startswith("Einladung")


def test_unknown_template_is_refused() -> None:
    """Only the known kinds render."""
    with pytest.raises(UnknownTemplate):
        Renderer().render("nope", language="de", params={}, member=MEMBER, branding=BRANDING)

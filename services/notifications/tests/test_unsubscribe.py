"""Unit tests of the unsubscribe links: which kinds carry one, where it shows, how it is signed and checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engagiert.notifications.api.unsubscribe import page_language
from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.rendering import PREVIEW_UNSUBSCRIBE_URL, Renderer
from engagiert.notifications.services.unsubscribe import Unsubscribe
from engagiert.shared.contracts.letters import LETTERS, is_transactional
from engagiert.shared.signing import LinkError, sign_link

MEMBER = {"given_name": "Jürgen", "family_name": "Weiß", "email": "j.weiss@example.org"}
BRANDING = {"name": "Stadt Paderborn", "contact_name": "Anlaufstelle für ehrenamtliches Engagement"}
NOT_TRANSACTIONAL = {"invitation", "rsvp-reminder", "generic"}


def test_the_contracts_declare_which_kinds_are_transactional() -> None:
    """Invitations, reminders and circulars offer something new; answers, seats, changes, cards and refusals do not."""
    assert {kind for kind, model in LETTERS.items() if not model.TRANSACTIONAL} == NOT_TRANSACTIONAL
    assert is_transactional("event-changed")
    assert is_transactional("event-cancelled")
    assert not is_transactional("no-such-kind"), "an unknown kind gets the link rather than none"


@pytest.mark.parametrize("kind", sorted(LETTERS))
@pytest.mark.parametrize("lang", ["de", "en"])
def test_only_mails_that_are_not_transactional_show_the_link_in_html_and_text(kind: str, lang: str) -> None:
    """The link is a real link in the HTML and written out in the text; transactional mails and letters have none."""
    url = "https://engagiert.example.org/unsubscribe/abc.def.k1"
    params = LETTERS[kind].example().to_params()
    message = Renderer().render(
        kind, language=lang, params=params, member=MEMBER, branding=BRANDING, unsubscribe_url=url
    )
    words = "Keine E-Mails mehr erhalten" if lang == "de" else "Stop receiving emails"
    if kind in NOT_TRANSACTIONAL:
        assert f'<a href="{url}"' in message.html
        assert words in message.html
        assert f"{words}: {url}" in message.text
    else:
        assert "unsubscribe" not in message.html
        assert "unsubscribe" not in message.text
    letter = Renderer().render_letter(kind, language=lang, params=params, member=MEMBER, branding=BRANDING)
    assert "unsubscribe" not in letter.text, "a printed letter has no link to click"


def test_a_preview_without_a_member_shows_the_example_link() -> None:
    """Previews and reviewed texts show an example link (a sent mail always gets the member's own)."""
    params = LETTERS["invitation"].example().to_params()
    message = Renderer().render("invitation", language="de", params=params, member=MEMBER, branding=BRANDING)
    assert PREVIEW_UNSUBSCRIBE_URL in message.text


def _service(**settings: Any) -> Unsubscribe:
    values: dict[str, Any] = {"public_base_url": "https://engagiert.paderborn.example", **settings}
    return Unsubscribe(repo=None, settings=NotificationsSettings(**values))  # type: ignore[arg-type]


def test_a_link_names_municipality_member_and_channel_and_nothing_personal() -> None:
    """The link verifies to its member and e-mail; it carries no name and no address."""
    service = _service()
    url = service.url(municipality="05774032", member_id="m-4711")
    assert url.startswith("https://engagiert.paderborn.example/unsubscribe/")
    token = url.rsplit("/", 1)[1]
    link = service.open(token)
    assert (link.municipality, link.member_id, link.channel) == ("05774032", "m-4711", "email")
    assert "@" not in url


def test_a_tampered_foreign_or_expired_link_is_refused_with_its_reason() -> None:
    """Changing one character, an RSVP token, another secret or an old link: forged, forged, forged, expired."""
    service = _service()
    token = service.url(municipality="05774032", member_id="m-4711").rsplit("/", 1)[1]
    payload, rest = token.split(".", 1)
    tampered = f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{rest}"
    later = datetime.now(UTC) + timedelta(days=30)
    keys = NotificationsSettings().link_keys()
    rsvp = sign_link(keys, purpose="rsvp", subject="05774032:email:m-4711", expires_at=later)
    other = _service(link_secret="another-secret-that-is-long-enough-0123456789")
    foreign = other.url(municipality="05774032", member_id="m-4711").rsplit("/", 1)[1]
    expired = sign_link(keys, purpose="unsubscribe", subject="05774032:email:m-4711", expires_at=datetime.now(UTC))
    for bad, reason in ((tampered, {"forged", "malformed"}), (rsvp, {"forged"}), (foreign, {"forged"}),
                        (expired, {"expired"}), ("nonsense", {"malformed"})):  # fmt: skip
        with pytest.raises(LinkError) as err:
            service.open(bad)
        assert err.value.reason in reason, bad
    shaped = sign_link(keys, purpose="unsubscribe", subject="Paderborn:email:m-1", expires_at=later)
    with pytest.raises(LinkError):
        service.open(shaped)


def test_the_page_language_follows_the_query_then_the_browser_then_german() -> None:
    """?lang= wins; else the browser's preferred of de/en (q-values); else German."""
    assert page_language("en", "de-DE") == "en"
    assert page_language(None, "en-GB,en;q=0.9,de;q=0.8") == "en"
    assert page_language(None, "fr-FR,de;q=0.5,en;q=0.4") == "de"
    assert page_language(None, "fr-FR") == "de"
    assert page_language(None, None) == "de"
    assert page_language(None, "en;q=0.2,de;q=0.9") == "de"


def test_the_page_renders_with_a_bare_default_branding() -> None:
    """Before the registry's profile arrives the branding has only a name: the page still renders (no 500)."""
    from starlette.requests import Request

    from engagiert.notifications.api.unsubscribe import _render
    from engagiert.notifications.domain import default_branding

    request = Request({"type": "http", "method": "GET", "path": "/unsubscribe/x", "headers": [], "query_string": b""})
    page = _render(
        request, "de", heading="Keine E-Mails mehr erhalten", form=True, branding=default_branding("05774032")
    )
    assert page.status_code == 200
    assert b"Kommune 05774032" in page.body

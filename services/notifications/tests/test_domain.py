"""Unit tests of the rules, the templates and the SMTP error sorting (no I/O)."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser

import aiosmtplib
import pytest
from aiosmtplib.email import flatten_message

from engagiert.notifications import domain
from engagiert.notifications.mailer import PermanentSmtpError, TransientSmtpError, _classify_refused, compose
from engagiert.notifications.rendering import Renderer, UnknownTemplate
from engagiert.shared.contracts.letters import LETTERS, InvitationLetter

BRANDING = {"name": "Stadt Paderborn", "signature": "Anlaufstelle Ehrenamt", "logo_url": "https://example.org/l.png"}
MEMBER = {"given_name": "Erika", "family_name": "Mustermann"}


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


def test_refused_recipients_are_permanent_for_5xx_and_transient_for_4xx() -> None:
    """An unknown recipient (550) fails at once; a greylisting 450 is retried."""
    hard = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")])
    soft = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "try later", "x@y")])
    assert isinstance(_classify_refused(hard), PermanentSmtpError)
    assert isinstance(_classify_refused(soft), TransientSmtpError)


def test_composed_message_round_trips_umlauts_in_sender_subject_text_and_html() -> None:
    """The compat32-built message decodes to what was rendered: names, subject and both parts in UTF-8."""
    message = compose(
        sender="Stadt Düsseldorf <no-reply@example.org>",
        to="erika.mustermann@example.org",
        subject="Herzlichen Glückwunsch: Ehrenamtskarte",
        text="Mit freundlichen Grüßen\n",
        html="<p>Mit freundlichen Grüßen</p>",
        message_id="<d_1@engagiert.local>",
        headers={"X-Engagiert-Delivery": "d_1"},
    )
    parsed = BytesParser(policy=email.policy.default).parsebytes(flatten_message(message))
    assert parsed["From"].addresses[0].display_name == "Stadt Düsseldorf"
    assert parsed["Subject"] == "Herzlichen Glückwunsch: Ehrenamtskarte"
    assert parsed["Message-ID"] == "<d_1@engagiert.local>"
    assert parsed["X-Engagiert-Delivery"] == "d_1"
    body = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert body is not None
    assert body.get_content() == "Mit freundlichen Grüßen\n"
    assert html is not None
    assert html.get_content() == "<p>Mit freundlichen Grüßen</p>"

"""Unit tests of the SMTP error sorting and the composed message (no I/O)."""

from __future__ import annotations

import email.policy
from email.parser import BytesParser

import aiosmtplib
from aiosmtplib.email import flatten_message

from engagiert.notifications.mailer import (
    PermanentSmtpError,
    TransientSmtpError,
    _classify_refused,
    compose,
    smtp_codes,
)


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


def test_an_answer_keeps_the_reply_and_enhanced_status_codes_never_the_text() -> None:
    """The server's text can hold the recipient's address: only '550 5.1.1' stays (or the code alone)."""
    assert smtp_codes(550, "5.1.1 <erika@example.org>: Recipient address rejected") == "550 5.1.1"
    assert smtp_codes(250, "2.0.0 Ok: queued as 4711") == "250 2.0.0"
    assert smtp_codes(250, "Ok: queued as 4711") == "250"
    assert smtp_codes(451, "4.7.1x greylisted") == "451"
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 <erika@example.org> unknown", "erika@example.org")]
    )
    assert _classify_refused(refused).answer == "550 5.1.1"

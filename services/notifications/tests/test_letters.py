"""Letters: every kind renders in German and English from its contract's example, as reviewed."""

from __future__ import annotations

import email.policy
import io
import os
from datetime import UTC, date, datetime
from email.parser import BytesParser
from pathlib import Path

import icalendar
import pytest
from aiosmtplib.email import flatten_message

from engagiert.notifications.formatting import Formatter
from engagiert.notifications.mailer import compose
from engagiert.notifications.rendering import InvalidParams, Renderer
from engagiert.shared.contracts.letters import LETTERS, EventCancelledLetter, InvitationLetter

GOLDEN = Path(__file__).parent / "golden"
PADERBORN = {
    "municipality": "05774032",
    "name": "Stadt Paderborn",
    "contact_name": "Anlaufstelle für ehrenamtliches Engagement",
    "email": "ehrenamt@paderborn.example",
    "phone": "05251 88-11000",
    "address": "Am Abdinghof 11\n33098 Paderborn",
    "website": "https://www.paderborn.example/ehrenamt",
    "colour": "#005a9c",
}
MEMBER = {
    "given_name": "Anna-Lena Sophie Müßiggang-Özdemir",
    "family_name": "von Groß-Schönebeck-Ährenfeld",
    "email": "anna-lena@example.org",
}
CASES = [(kind, lang) for kind in sorted(LETTERS) for lang in ("de", "en")]


@pytest.mark.parametrize(("kind", "lang"), CASES)
def test_every_kind_shows_every_parameter_of_its_contract_and_no_other(kind: str, lang: str) -> None:
    """A template that reads a name the contract lacks fails (StrictUndefined); one that ignores a field fails here."""
    model = LETTERS[kind]
    message, used = Renderer().render_tracked(
        kind, language=lang, params=model.example().to_params(), member=MEMBER, branding=PADERBORN
    )
    assert set(model.model_fields) - used == set(), f"{kind}/{lang} does not show {set(model.model_fields) - used}"
    assert message.subject
    assert "\n" not in message.subject
    assert f'<html lang="{lang}"' in message.html
    assert MEMBER["family_name"] in message.text
    assert MEMBER["family_name"] in message.html


@pytest.mark.parametrize(("kind", "lang"), CASES)
def test_every_kind_matches_its_reviewed_golden_text(kind: str, lang: str) -> None:
    """Subject and plain text equal the reviewed file (UPDATE_GOLDEN=1 rewrites the files after a review)."""
    message = Renderer().render(
        kind, language=lang, params=LETTERS[kind].example().to_params(), member=MEMBER, branding=PADERBORN
    )
    got = f"Subject: {message.subject}\n\n{message.text}"
    path = GOLDEN / f"{kind}.{lang}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_dates_times_and_numbers_are_written_as_in_a_letter_of_each_language() -> None:
    """German: "Samstag, 5. Dezember 2026, 17:00 Uhr"; English: "Saturday, 5 December 2026, 5:00 PM" (Europe/Berlin)."""
    start = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
    assert Formatter("de").datetime(start) == "Samstag, 5. Dezember 2026, 17:00 Uhr"
    assert Formatter("en").datetime(start) == "Saturday, 5 December 2026, 5:00 PM"
    summer = datetime(2027, 7, 1, 15, 30, tzinfo=UTC)
    assert Formatter("de").time(summer) == "17:30 Uhr"
    assert Formatter("de").date(date(2027, 3, 31)) == "31. März 2027"
    assert Formatter("de").number(1234.5) == "1.234,5"
    assert Formatter("en").number(1234.5) == "1,234.5"
    assert Formatter("de").answer("accepted") == "Zusage"
    assert Formatter("de").honour_object("engagementnachweis") == "den Engagementnachweis NRW"


def test_the_confirmation_in_german_has_no_english_word() -> None:
    """The answer and the kinds are translated: no "accepted", "declined" or "waitlisted" in a German letter."""
    renderer = Renderer()
    for answer in ("accepted", "declined", "waitlisted"):
        params = LETTERS["rsvp-confirmation"].example().to_params() | {"answer": answer}
        message = renderer.render("rsvp-confirmation", language="de", params=params, member=MEMBER, branding=PADERBORN)
        for word in ("accepted", "declined", "waitlisted", "Your", "guest"):
            assert word not in message.text
            assert word not in message.html


def test_the_invitation_carries_a_calendar_entry_at_17_00_europe_berlin_with_a_uid_per_invitation() -> None:
    """DTSTART has TZID Europe/Berlin; the UID is the invitation's; the cancellation is METHOD:CANCEL with a higher SEQUENCE."""
    renderer = Renderer(uid_domain="paderborn.example")
    invitation = renderer.render(
        "invitation", language="de", params=InvitationLetter.example().to_params(), member=MEMBER, branding=PADERBORN
    )
    assert invitation.calendar is not None
    assert invitation.calendar_method == "REQUEST"
    cal = icalendar.Calendar.from_ical(invitation.calendar)
    event = cal.walk("VEVENT")[0]
    start = event.decoded("dtstart")
    assert str(start.tzinfo) == "Europe/Berlin"
    assert (start.hour, start.minute) == (17, 0)
    assert b"DTSTART;TZID=Europe/Berlin:20261205T170000" in invitation.calendar
    assert cal.walk("VTIMEZONE")[0]["TZID"] == "Europe/Berlin"
    assert str(event["uid"]) == "invitation-evt-2026-12-05:m-0001@paderborn.example"
    assert str(event["location"]).startswith("Historisches Rathaus Paderborn")
    assert "ehrenamt@paderborn.example" in str(event["organizer"])
    cancelled = renderer.render(
        "event-cancelled",
        language="de",
        params=EventCancelledLetter.example().to_params(),
        member=MEMBER,
        branding=PADERBORN,
    )
    assert cancelled.calendar is not None
    assert cancelled.calendar_method == "CANCEL"
    withdrawn = icalendar.Calendar.from_ical(cancelled.calendar)
    assert str(withdrawn["method"]) == "CANCEL"
    gone = withdrawn.walk("VEVENT")[0]
    assert str(gone["uid"]) == str(event["uid"])
    assert int(gone["sequence"]) > int(event["sequence"])
    assert str(gone["status"]) == "CANCELLED"


def test_the_html_has_the_rsvp_link_as_a_button_and_written_out() -> None:
    """The action is a real link (twice: the button and the written-out address), tables are presentation tables."""
    message = Renderer().render(
        "invitation", language="de", params=InvitationLetter.example().to_params(), member=MEMBER, branding=PADERBORN
    )
    url = str(InvitationLetter.example().rsvp_url)
    assert message.html.count(f'href="{url}"') == 2
    assert f">{url}</a>" in message.html
    assert "<table" in message.html
    assert 'role="presentation"' in message.html
    assert message.html.count("<table") == message.html.count('role="presentation"')


def test_the_honour_letter_shows_the_check_link_as_a_qr_code_image_with_alt_text() -> None:
    """The QR code travels as an inline PNG referenced by cid, with an alt text."""
    message = Renderer().render(
        "honour-granted",
        language="de",
        params=LETTERS["honour-granted"].example().to_params(),
        member=MEMBER,
        branding=PADERBORN,
    )
    assert message.images["qr-code"].startswith(b"\x89PNG")
    assert 'src="cid:qr-code"' in message.html
    assert 'alt="QR-Code' in message.html
    assert "PB-2026-0042" in message.text


def test_requests_of_the_former_shape_still_render() -> None:
    """Requests queued before the contracts (``event_date``, ``location``, ``kind``) are still understood."""
    message = Renderer().render(
        "event-cancelled",
        language="de",
        params={
            "event_title": "Feierstunde",
            "event_kind": "Feierstunde",
            "event_date": "2026-12-05T16:00:00+00:00",
            "location": "Rathaus",
            "reason": None,
        },
        member=MEMBER,
        branding={"name": "Stadt Paderborn"},
    )
    assert "Samstag, 5. Dezember 2026" in message.text
    assert "Rathaus" in message.text


def test_params_that_break_the_contract_are_refused_with_the_reason() -> None:
    """A missing required parameter is an error, not an empty place in the letter."""
    params = InvitationLetter.example().to_params()
    params.pop("rsvp_url")
    with pytest.raises(InvalidParams, match="rsvp_url"):
        Renderer().render("invitation", language="de", params=params, member=MEMBER, branding=PADERBORN)


def test_the_composed_invitation_has_reply_to_a_calendar_part_and_the_inline_qr_code() -> None:
    """The mail is multipart/mixed with the alternatives and a text/calendar; method=REQUEST part; Reply-To is set."""
    renderer = Renderer()
    message = renderer.render(
        "invitation", language="de", params=InvitationLetter.example().to_params(), member=MEMBER, branding=PADERBORN
    )
    composed = compose(
        sender="Stadt Paderborn – Anlaufstelle für ehrenamtliches Engagement <no-reply@paderborn.example>",
        to=MEMBER["email"],
        subject=message.subject,
        text=message.text,
        html=message.html,
        message_id="<d_1@paderborn.example>",
        headers={},
        reply_to="Anlaufstelle für ehrenamtliches Engagement <ehrenamt@paderborn.example>",
        calendar=message.calendar,
        calendar_method=message.calendar_method,
    )
    parsed = BytesParser(policy=email.policy.default).parsebytes(flatten_message(composed))
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed["From"].addresses[0].display_name.startswith("Stadt Paderborn – Anlaufstelle")
    assert parsed["Reply-To"].addresses[0].addr_spec == "ehrenamt@paderborn.example"
    calendars = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendars) == 1
    assert calendars[0].get_param("method") == "REQUEST"
    entry = icalendar.Calendar.from_ical(calendars[0].get_content())
    start = entry.walk("VEVENT")[0].decoded("dtstart")
    assert (start.hour, str(start.tzinfo)) == (17, "Europe/Berlin")
    assert parsed.get_body(("plain",)).get_content() == message.text

    honour = renderer.render(
        "honour-granted",
        language="de",
        params=LETTERS["honour-granted"].example().to_params(),
        member=MEMBER,
        branding=PADERBORN,
    )
    with_image = compose(
        sender="a <a@example.org>",
        to="b@example.org",
        subject=honour.subject,
        text=honour.text,
        html=honour.html,
        message_id="<d_2@example.org>",
        headers={},
        images=honour.images,
    )
    parsed = BytesParser(policy=email.policy.default).parsebytes(flatten_message(with_image))
    images = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert images[0]["Content-ID"] == "<qr-code>"
    assert parsed.get_body(("html",)).get_content() == honour.html


def test_a_printed_letter_has_the_name_and_address_in_the_window_field() -> None:
    """DIN 5008 form B: the recipient stands between 45 and 90 mm from the top, 20-105 mm from the left."""
    from pypdf import PdfReader

    from engagiert.notifications.printing import PostalLetter, letters_pdf
    from engagiert.notifications.rendering import complete_branding

    branding = complete_branding(PADERBORN)
    rendered = Renderer().render_letter(
        "invitation", language="de", params=InvitationLetter.example().to_params(), member=MEMBER, branding=branding
    )
    address = ["Anna-Lena Sophie Müßiggang-Özdemir von Groß-Schönebeck-Ährenfeld", "Kötterhagen 17", "33098 Paderborn"]
    pdf = letters_pdf(
        [
            PostalLetter(recipient=address, subject=rendered.subject, body=rendered.text, dated=date(2026, 11, 30)),
            PostalLetter(
                recipient=["Max Mustermann", "Markt 1", "33098 Paderborn"],
                subject="x",
                body="y",
                dated=date(2026, 11, 30),
            ),
        ],
        branding=branding,
    )
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2, "one page per letter, collected into one PDF"
    window: list[str] = []
    mm = 72 / 25.4

    def visit(text: str, cm: object, tm: list[float], *_: object) -> None:
        x, y = tm[4] / mm, 297 - tm[5] / mm
        if 45 <= y <= 90 and 20 <= x <= 105 and text.strip():
            window.append(text.strip())

    reader.pages[0].extract_text(visitor_text=visit)
    joined = " ".join(window)
    assert "Kötterhagen 17" in joined
    assert "33098 Paderborn" in joined
    assert "Müßiggang-Özdemir" in joined
    text = reader.pages[0].extract_text()
    assert "Einladung: Empfang zum Tag des Ehrenamts am 5. Dezember 2026" in text
    assert "Samstag, 5. Dezember 2026, 17:00 bis 20:00 Uhr" in text
    assert "Sie erhalten diese Nachricht" not in text  # the e-mail footer is not printed


def test_certificates_carry_the_holder_and_the_municipality() -> None:
    """The Engagementnachweis NRW lists organisation, field, activity, period and hours; the Urkunde names the honour."""
    from pypdf import PdfReader

    from engagiert.notifications.printing import Certificate, certificate_pdf
    from engagiert.notifications.rendering import complete_branding

    branding = complete_branding(PADERBORN)
    holder = f"{MEMBER['given_name']} {MEMBER['family_name']}"
    proof = certificate_pdf(
        Certificate(
            kind="engagementnachweis",
            holder=holder,
            dated=date(2026, 12, 5),
            organisation="Paderborner Tafel e. V.",
            field_of_engagement="Soziales",
            activity="Ausgabe von Lebensmitteln",
            period="März 2019 bis November 2026",
            hours=1234.5,
        ),
        branding=branding,
    )
    text = PdfReader(io.BytesIO(proof)).pages[0].extract_text()
    for expected in ("Engagementnachweis NRW", "Stadt Paderborn", "Paderborner Tafel e. V.", "1.234,5", "Müßiggang"):
        assert expected in text
    award = certificate_pdf(
        Certificate(kind="urkunde", holder=holder, dated=date(2026, 12, 5), title="die Ehrenamtskarte NRW"),
        branding=branding,
    )
    assert "Urkunde" in PdfReader(io.BytesIO(award)).pages[0].extract_text()


def test_a_process_that_only_sends_mail_does_not_load_the_pdf_library() -> None:
    """fpdf2 (with fontTools and Pillow, about 24 MiB) is imported by the first PDF, not by the service's start."""
    import subprocess
    import sys

    probe = "import sys, engagiert.notifications.main; print(sorted({'fpdf', 'fontTools'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"

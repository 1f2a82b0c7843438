"""Lays out printable PDFs with fpdf2: letters in DIN 5008 (form B) and certificates with the municipality's branding.

fpdf2 is pure Python (its dependencies Pillow, fontTools and defusedxml come as wheels), so it
installs from PyPI alone; WeasyPrint would need Debian's Pango on every host. The font (DejaVu
Sans, in ``fonts/`` with its licence) is embedded, so umlauts, "ß" and "–" print everywhere.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF

from engagiert.notifications.formatting import Formatter

FONT_DIR = Path(__file__).parent / "fonts"
FONT = "DejaVu"
LEFT, RIGHT = 25.0, 20.0  # mm: DIN 5008 margins
WIDTH = 210.0 - LEFT - RIGHT


@dataclass(frozen=True, kw_only=True)
class PostalLetter:
    """One letter: the recipient's address lines, the subject, the body (plain text) and the date."""

    recipient: Sequence[str]
    subject: str
    body: str
    dated: date
    language: str = "de"
    qr_url: str | None = None
    """A link printed as a QR code below the text (the RSVP page, the card's check)."""


@dataclass(frozen=True, kw_only=True)
class Certificate:
    """A certificate: the Engagementnachweis NRW or an Urkunde for a granted honour."""

    kind: str  # "engagementnachweis" or "urkunde"
    holder: str
    dated: date
    title: str = ""
    organisation: str = ""
    field_of_engagement: str = ""
    activity: str = ""
    period: str = ""
    hours: float | None = None
    competences: Sequence[str] = field(default_factory=tuple)
    thanks: str = ""


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _document(branding: dict[str, Any]) -> FPDF:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(LEFT, 20, RIGHT)
    pdf.set_auto_page_break(auto=True, margin=25)
    pdf.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_title(str(branding.get("name") or ""))
    pdf.set_author(str(branding.get("contact_name") or branding.get("name") or ""))
    pdf.set_creator("engagiert")
    return pdf


def _sender_line(branding: dict[str, Any]) -> str:
    address = str(branding.get("address") or "").replace("\n", " · ")
    return " · ".join(p for p in (str(branding.get("name") or ""), address) if p)


def letters_pdf(letters: Sequence[PostalLetter], *, branding: dict[str, Any]) -> bytes:
    """Return one PDF with every letter (each starts on a new page) for printing and window envelopes."""
    pdf = _document(branding)
    colour = _rgb(str(branding.get("colour") or "#005a9c"))
    for letter in letters:
        fmt = Formatter(letter.language)
        pdf.add_page()
        # Fold marks (105 mm and 210 mm) and the punch mark (148.5 mm) at the left edge.
        pdf.set_draw_color(120, 120, 120)
        for y, length in ((105.0, 5.0), (148.5, 8.0), (210.0, 5.0)):
            pdf.line(3, y, 3 + length, y)
        # Letterhead, top right.
        pdf.set_text_color(*colour)
        pdf.set_font(FONT, "B", 14)
        pdf.set_xy(LEFT, 15)
        pdf.cell(WIDTH, 7, str(branding.get("name") or ""), align="R")
        pdf.set_text_color(60, 60, 60)
        pdf.set_font(FONT, "", 9)
        if branding.get("contact_name"):
            pdf.set_xy(LEFT, 22)
            pdf.cell(WIDTH, 5, str(branding["contact_name"]), align="R")
        # Return line at the top of the address field (form B: 45 mm from the top, 20 mm from the left).
        pdf.set_font(FONT, "", 7)
        pdf.set_xy(LEFT, 50)
        pdf.cell(80, 4, _sender_line(branding)[:90], border="B")
        # The address: 9 lines from 62.7 mm, visible in a DIN long window envelope.
        pdf.set_text_color(0, 0, 0)
        pdf.set_font(FONT, "", 11)
        pdf.set_xy(LEFT, 62.7)
        for line in letter.recipient[:6]:
            pdf.set_x(LEFT)
            pdf.multi_cell(80, 5, line, align="L", new_x="LMARGIN", new_y="NEXT")
        # Information block, right (125 mm from the left, 50 mm from the top).
        pdf.set_font(FONT, "", 9)
        info = [
            ("Ihr Kontakt" if letter.language == "de" else "Your contact", branding.get("contact_name")),
            ("Telefon" if letter.language == "de" else "Phone", branding.get("phone")),
            ("E-Mail" if letter.language == "de" else "Email", branding.get("email")),
            ("Datum" if letter.language == "de" else "Date", fmt.date(letter.dated)),
        ]
        y = 50.0
        for label, value in info:
            if not value:
                continue
            pdf.set_xy(125, y)
            pdf.cell(22, 4.5, f"{label}:")
            pdf.multi_cell(210 - RIGHT - 147, 4.5, str(value), align="L", new_x="LMARGIN", new_y="NEXT")
            y = pdf.get_y()
        # Subject (Betreff) in bold, then the text.
        pdf.set_xy(LEFT, 103.5)
        pdf.set_font(FONT, "B", 11)
        pdf.multi_cell(WIDTH, 5.5, letter.subject, align="L")
        pdf.ln(6)
        pdf.set_font(FONT, "", 10.5)
        for paragraph in letter.body.strip().split("\n"):
            pdf.set_x(LEFT)
            if "\t" in paragraph:  # a fact: label and value in two columns
                label, value = paragraph.split("\t", 1)
                pdf.set_font(FONT, "B", 10.5)
                pdf.cell(35, 5.2, label)
                pdf.set_font(FONT, "", 10.5)
                pdf.multi_cell(WIDTH - 35, 5.2, value, align="L")
            else:
                pdf.multi_cell(WIDTH, 5.2, paragraph or " ", align="L")
        if letter.qr_url:
            pdf.ln(3)
            pdf.image(_qr_png(letter.qr_url), x=LEFT, w=28, h=28)
        _footer(pdf, branding)
    return bytes(pdf.output())


def certificate_pdf(certificate: Certificate, *, branding: dict[str, Any]) -> bytes:
    """Return a one-page certificate in the municipality's colour (Engagementnachweis NRW or Urkunde)."""
    pdf = _document(branding)
    fmt = Formatter("de")
    colour = _rgb(str(branding.get("colour") or "#005a9c"))
    pdf.add_page()
    pdf.set_draw_color(*colour)
    pdf.set_line_width(1.2)
    pdf.rect(12, 12, 186, 273)
    pdf.set_line_width(0.3)
    pdf.rect(15, 15, 180, 267)
    pdf.set_text_color(*colour)
    pdf.set_font(FONT, "B", 13)
    pdf.set_xy(LEFT, 28)
    pdf.cell(WIDTH, 7, str(branding.get("name") or ""), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.set_text_color(60, 60, 60)
    if branding.get("contact_name"):
        pdf.cell(WIDTH, 5, str(branding["contact_name"]), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(22)
    pdf.set_text_color(*colour)
    pdf.set_font(FONT, "B", 30)
    heading = "Engagementnachweis NRW" if certificate.kind == "engagementnachweis" else "Urkunde"
    pdf.cell(WIDTH, 14, heading, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(FONT, "", 12)
    intro = "Hiermit bestätigen wir, dass" if certificate.kind == "engagementnachweis" else "Wir verleihen"
    pdf.cell(WIDTH, 7, intro, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(FONT, "B", 20)
    pdf.multi_cell(WIDTH, 10, certificate.holder, align="C")
    pdf.ln(4)
    pdf.set_font(FONT, "", 12)
    if certificate.kind == "engagementnachweis":
        pdf.multi_cell(WIDTH, 7, "sich ehrenamtlich engagiert hat:", align="C")
        pdf.ln(6)
        rows = [
            ("Organisation", certificate.organisation),
            ("Engagementfeld", certificate.field_of_engagement),
            ("Tätigkeit", certificate.activity),
            ("Zeitraum", certificate.period),
            ("Stunden", fmt.number(certificate.hours, digits=1) if certificate.hours is not None else ""),
        ]
        for label, value in rows:
            if value:
                pdf.set_x(LEFT + 10)
                pdf.set_font(FONT, "B", 11)
                pdf.cell(44, 7, label)
                pdf.set_font(FONT, "", 11)
                pdf.multi_cell(WIDTH - 54, 7, value, align="L")
        if certificate.competences:
            pdf.ln(3)
            pdf.set_x(LEFT + 10)
            pdf.set_font(FONT, "B", 11)
            pdf.cell(WIDTH - 10, 7, "Erworbene Kompetenzen", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(FONT, "", 11)
            for competence in certificate.competences:
                pdf.set_x(LEFT + 14)
                pdf.multi_cell(WIDTH - 14, 6, f"• {competence}")
    else:
        pdf.multi_cell(WIDTH, 8, f"{certificate.title}", align="C")
        pdf.ln(2)
        pdf.multi_cell(WIDTH, 7, "in Anerkennung und Würdigung ihres ehrenamtlichen Engagements.", align="C")
    pdf.ln(8)
    pdf.set_font(FONT, "", 11)
    thanks = certificate.thanks or "Für Ihren Einsatz danken wir Ihnen herzlich."
    pdf.multi_cell(WIDTH, 6.5, thanks, align="C")
    # Place, date and the signature line at the bottom.
    city = str(branding.get("address") or "").split("\n")[-1].split(" ", 1)[-1]
    pdf.set_xy(LEFT + 5, 240)
    pdf.set_font(FONT, "", 10)
    pdf.cell(70, 6, f"{city}, {fmt.date(certificate.dated)}".lstrip(", "))
    pdf.line(120, 245, 185, 245)
    pdf.set_xy(120, 246)
    pdf.cell(65, 5, str(branding.get("contact_name") or branding.get("name") or ""), align="C")
    return bytes(pdf.output())


def _footer(pdf: FPDF, branding: dict[str, Any]) -> None:
    pdf.set_auto_page_break(auto=False)  # the footer sits in the bottom margin
    parts = [
        str(branding.get("name") or ""),
        str(branding.get("address") or "").replace("\n", ", "),
        str(branding.get("website") or "").replace("https://", ""),
    ]
    pdf.set_xy(LEFT, 280)
    pdf.set_font(FONT, "", 7.5)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(WIDTH, 4, " · ".join(p for p in parts if p), align="C")
    pdf.set_text_color(0, 0, 0)
    pdf.set_auto_page_break(auto=True, margin=25)


def _qr_png(url: str) -> io.BytesIO:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=6, border=2)
    out.seek(0)
    return out

"""Renders letters (kept as template files beside this module): subject, plain text, HTML and attachments.

Each kind has ``templates/<lang>/<kind>.txt`` (with a ``subject`` block) and
``templates/<lang>/<kind>.html``; they extend the shared ``_layout`` files. The parameters are
validated with the kind's contract (:mod:`engagiert.shared.contracts.letters`) first; dates and
numbers are formatted per language by :class:`~engagiert.notifications.formatting.Formatter`.
HTML is rendered with autoescape on, so a parameter or a branding value can never inject markup;
a name the template uses but the contract lacks is an error (``StrictUndefined``), never a blank.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import segno
from markupsafe import Markup, escape
from pydantic import AnyUrl, ValidationError

from engagiert.notifications.calendar_entry import CalendarEntry, Method, build_entry, uid_for
from engagiert.notifications.domain import (
    DEFAULT_COLOUR,
    DEFAULT_LANGUAGE,
    LANGUAGES,
    TEMPLATE_NAMES,
    RenderedMessage,
)
from engagiert.notifications.formatting import Formatter
from engagiert.shared.contracts.letters import LETTERS, LetterParams, RsvpConfirmationLetter, letter_params
from engagiert.shared.problems import Problem

TEMPLATE_DIR = Path(__file__).parent / "templates"

WORDS: dict[str, dict[str, str]] = {
    "de": {
        "greeting": "Guten Tag",
        "closing": "Mit freundlichen Grüßen",
        "contact": "Ihre Ansprechpartner",
        "phone": "Telefon",
        "email": "E-Mail",
        "web": "Internet",
        "link_hint": "Falls die Schaltfläche nicht funktioniert, öffnen Sie diesen Link:",
        "footer": "Sie erhalten diese Nachricht, weil Sie der Kontaktaufnahme per E-Mail zugestimmt haben.",
        "unsubscribe": "Keine E-Mails mehr erhalten",
    },
    "en": {
        "greeting": "Dear",
        "closing": "Kind regards",
        "contact": "Your contact",
        "phone": "Phone",
        "email": "Email",
        "web": "Web",
        "link_hint": "If the button does not work, open this link:",
        "footer": "You receive this message because you agreed to be contacted by email.",
        "unsubscribe": "Stop receiving emails",
    },
}

BRANDING_DEFAULTS: dict[str, Any] = {
    "name": "",
    "signature": "",
    "logo_url": None,
    "colour": DEFAULT_COLOUR,
    "contact_name": "",
    "email": None,
    "phone": None,
    "address": "",
    "website": None,
}
"""Every branding value a layout reads, with what it shows when the municipality has not set it."""

PREVIEW_UNSUBSCRIBE_URL = "https://engagiert.example/unsubscribe/MDU3NzQwMzI6ZW1haWw6bS0wMDAx.cHJldmlldw"
"""The unsubscribe link previews and reviewed texts show; a sent mail carries the member's own (see Sender)."""

_CALENDAR_KINDS: dict[str, Method] = {
    "invitation": "REQUEST",
    "rsvp-reminder": "REQUEST",
    "waitlist-promoted": "REQUEST",
    "event-changed": "REQUEST",
    "event-cancelled": "CANCEL",
}
"""Kinds whose letter carries the calendar entry, and its method (a confirmation: see ``_calendar_method``)."""


class UnknownTemplate(LookupError):
    """No template of that name exists."""


class InvalidParams(Problem):
    """The parameters do not fit the template kind's contract (a 422 when a preview asks with them)."""

    def __init__(self, detail: str) -> None:
        super().__init__(422, "Invalid parameters", detail)


@dataclass
class _Params:
    """The validated parameters as templates see them; remembers which were read (for the contract test)."""

    values: dict[str, Any]
    used: set[str] = field(default_factory=set)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.values:
            raise AttributeError(name)
        self.used.add(name)
        return self.values[name]

    def __getitem__(self, name: str) -> Any:
        try:
            return self.__getattr__(name)
        except AttributeError:
            raise KeyError(name) from None


def _nl2br(value: str | None) -> Markup:
    """Return text with its line breaks as ``<br>`` (escaped first)."""
    lines = (value or "").strip().splitlines()
    return Markup("<br>\n").join(escape(line) for line in lines)


def _paragraphs(value: str | None) -> list[str]:
    """Return text split at blank lines."""
    return [p.strip() for p in re.split(r"\n\s*\n", value or "") if p.strip()]


def complete_branding(branding: Mapping[str, Any], municipality: str | None = None) -> dict[str, Any]:
    """Return the branding with every value a layout reads (defaults for those not set)."""
    complete = {**BRANDING_DEFAULTS, **{k: v for k, v in branding.items() if v is not None}}
    complete["municipality"] = branding.get("municipality") or municipality or ""
    if not complete["name"]:
        complete["name"] = f"Kommune {complete['municipality']}".strip()
    complete["logo_url"] = str(complete["logo_url"]) if complete["logo_url"] else None
    return complete


class Renderer:
    """Renders a kind of letter in a language with parameters, member names and branding."""

    def __init__(self, directory: Path = TEMPLATE_DIR, *, uid_domain: str = "engagiert.local") -> None:
        loader = jinja2.FileSystemLoader(str(directory))
        self._text = jinja2.Environment(  # plain text: nothing to escape
            loader=loader,
            autoescape=False,  # noqa: S701
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
        )
        self._html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
        for env in (self._text, self._html):
            env.filters["paragraphs"] = _paragraphs
            env.filters["capitalize_first"] = lambda text: text[:1].upper() + text[1:]
        self._html.filters["nl2br"] = _nl2br
        self.uid_domain = uid_domain

    def render(
        self,
        name: str,
        *,
        language: str,
        params: Mapping[str, Any],
        member: Mapping[str, Any],
        branding: Mapping[str, Any],
        now: datetime | None = None,
        unsubscribe_url: str | None = None,
    ) -> RenderedMessage:
        """Return subject, text, HTML, calendar entry and images of ``name`` (German for an unknown language).

        A kind that is not transactional shows ``unsubscribe_url`` (the example link when none is given).
        """
        rendered, _ = self.render_tracked(
            name,
            language=language,
            params=params,
            member=member,
            branding=branding,
            now=now,
            unsubscribe_url=unsubscribe_url,
        )
        return rendered

    def render_letter(
        self,
        name: str,
        *,
        language: str,
        params: Mapping[str, Any],
        member: Mapping[str, Any],
        branding: Mapping[str, Any],
    ) -> RenderedMessage:
        """Return subject and text of ``name`` for a printed letter (no e-mail footer, facts as two columns)."""
        rendered, _ = self.render_tracked(
            name, language=language, params=params, member=member, branding=branding, medium="letter"
        )
        return rendered

    def render_tracked(
        self,
        name: str,
        *,
        language: str,
        params: Mapping[str, Any],
        member: Mapping[str, Any],
        branding: Mapping[str, Any],
        now: datetime | None = None,
        medium: str = "email",
        unsubscribe_url: str | None = None,
    ) -> tuple[RenderedMessage, set[str]]:
        """Render like :meth:`render` and also return the names of the parameters that were shown."""
        if name not in TEMPLATE_NAMES or name not in LETTERS:
            raise UnknownTemplate(name)
        try:
            model = letter_params(name, dict(params))
        except ValueError as exc:
            raise InvalidParams(f"{name}: {_short(exc)}") from None
        lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
        view = _Params({k: _plain(getattr(model, k)) for k in type(model).model_fields})
        brand = complete_branding(branding)
        person = _person(member)
        fmt = Formatter(lang)
        letter = medium == "letter"
        calendar = (
            None if letter else self._calendar(name, model, view, fmt=fmt, member=person, branding=brand, now=now)
        )
        images = {} if letter else _images(name, view)
        # RFC 8058: what offers something new carries its way out; a transactional letter and a printed one none.
        unsubscribe = None if letter or LETTERS[name].TRANSACTIONAL else unsubscribe_url or PREVIEW_UNSUBSCRIBE_URL
        context = {
            "params": view,
            "member": person,
            "branding": brand,
            "fmt": fmt,
            "lang": lang,
            "words": WORDS[lang],
            "calendar": calendar is not None,
            "images": images,
            "medium": medium,
            "unsubscribe_url": unsubscribe,
        }
        text_template = self._text.get_template(f"{lang}/{name}.txt")
        subject = "".join(text_template.blocks["subject"](text_template.new_context(context))).strip()
        subject = " ".join(subject.split())  # a header holds one line
        text = _tidy_text(text_template.render(context))
        html = self._html.get_template(f"{lang}/{name}.html").render({**context, "subject": subject})
        message = RenderedMessage(
            subject=subject,
            text=text,
            html=html,
            calendar=calendar.content if calendar else None,
            calendar_method=calendar.method if calendar else None,
            images=images,
        )
        return message, set(view.used)

    def _calendar(
        self,
        name: str,
        model: LetterParams,
        view: _Params,
        *,
        fmt: Formatter,
        member: dict[str, Any],
        branding: dict[str, Any],
        now: datetime | None,
    ) -> CalendarEntry | None:
        method = _calendar_method(name, model)
        if method is None or not view.values.get("invitation_id"):
            return None
        venue = view.venue
        if view.venue_address:
            venue = f"{venue}, {view.venue_address}"
        url = view.values.get("rsvp_url")
        description = f"{fmt.event_kind(view.event_kind)} – {branding['name']}"
        if url:
            description += f"\n{url}"
        return build_entry(
            method=method,
            uid=uid_for(view.invitation_id, self.uid_domain),
            sequence=view.calendar_sequence,
            summary=view.event_title,
            starts_at=view.starts_at,
            ends_at=view.ends_at,
            location=venue,
            description=description,
            url=url,
            organizer_name=branding["contact_name"] or branding["name"],
            organizer_email=branding["email"],
            attendee_name=member["full_name"],
            attendee_email=member.get("email"),
            categories=fmt.event_kind(view.event_kind),
            accepted=isinstance(model, RsvpConfirmationLetter),
            stamp=now,
        )


def _calendar_method(name: str, model: LetterParams) -> Method | None:
    if isinstance(model, RsvpConfirmationLetter):
        # An acceptance puts the entry into the calendar, a decline takes it out, the waitlist leaves it.
        return {"accepted": "REQUEST", "declined": "CANCEL"}.get(model.answer)  # type: ignore[return-value]
    return _CALENDAR_KINDS.get(name)


def _images(name: str, view: _Params) -> dict[str, bytes]:
    """Return the inline images (content id -> PNG) of a letter: the QR code of a card's check link."""
    url = view.values.get("verify_url")
    if name != "honour-granted" or not url:
        return {}
    qr = segno.make(url, error="m")
    return {"qr-code": _png(qr)}


def _png(qr: segno.QRCode) -> bytes:
    import io

    out = io.BytesIO()
    qr.save(out, kind="png", scale=5, border=2, dark="#000000", light="#ffffff")
    return out.getvalue()


def _person(member: Mapping[str, Any]) -> dict[str, Any]:
    given = str(member.get("given_name") or "").strip()
    family = str(member.get("family_name") or "").strip()
    return {
        "given_name": given,
        "family_name": family,
        "full_name": f"{given} {family}".strip(),
        "email": member.get("email"),
    }


def _short(exc: ValueError) -> str:
    """Return a validation error as one line naming the parameters (without the values: they may be personal)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _plain(value: Any) -> Any:
    """Return a contract value as templates use it (URLs as strings)."""
    return str(value) if isinstance(value, AnyUrl) else value


def _tidy_text(text: str) -> str:
    """Return plain text without trailing blanks and with at most one empty line in a row."""
    # "-- " (with its blank) is the signature separator mail programs know.
    lines = ["-- " if line.rstrip() == "--" else line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def html_with_inline_images(message: RenderedMessage) -> str:
    """Return the HTML with its ``cid:`` images as data URIs (for previews in a browser)."""
    html = message.html
    for cid, png in message.images.items():
        html = html.replace(f"cid:{cid}", "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    return html

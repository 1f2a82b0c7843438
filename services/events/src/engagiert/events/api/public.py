"""Serves the pages without login: the RSVP page of an invitation link and the check of a card's code."""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from pathlib import Path
from string import Template
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from engagiert.events import domain
from engagiert.events.api.deps import HonourUseCases, RsvpUseCases
from engagiert.shared.problems import Problem

router = APIRouter(tags=["public"])

TZ = ZoneInfo("Europe/Berlin")
_TEMPLATES = Path(__file__).parent.parent / "templates"


@router.get("/v1/honours/keys", summary="The public keys that verify card codes: a JWK Set (Ed25519, public)")
async def card_keys(uc: HonourUseCases) -> JSONResponse:
    """Return the JWK Set (kty OKP, crv Ed25519, kid) a partner verifies card codes with, offline."""
    return JSONResponse(uc.card_keys(), headers={"Cache-Control": "public, max-age=300"})


@router.get("/v1/honours/verify/{code}", summary="Check a card's verification code (public)")
async def verify(code: str, uc: HonourUseCases) -> dict[str, Any]:
    """Answer whether a card's code is genuine and valid; no personal data."""
    try:
        return await uc.verify_card(code)
    except domain.LinkError as exc:
        # A revoked card (its holder was erased) is answered as such, with nothing about the holder.
        status = 410 if exc.reason in ("expired", "revoked") else 404
        raise Problem(status, "Invalid card code", f"the code is {exc.reason}", extra={"reason": exc.reason}) from None


# -- the RSVP page -----------------------------------------------------------------------------

Lang = Literal["de", "en"]

TEXT: dict[str, dict[str, str]] = {
    "de": {
        "page_title": "Einladung: Antwort",
        "heading": "Ihre Einladung",
        "label_event": "Veranstaltung",
        "label_date": "Datum",
        "label_venue": "Ort",
        "label_deadline": "Antwort bis",
        "label_accept_legend": "Zusagen",
        "label_guests": "Anzahl Begleitpersonen",
        "label_accept": "Ich komme gern",
        "label_decline": "Ich kann leider nicht kommen",
        "status_invited": "Bitte sagen Sie zu oder ab.",
        "status_accepted": "Sie haben zugesagt ({guests} Begleitpersonen). Vielen Dank!",
        "status_accepted_one": "Sie haben zugesagt (1 Begleitperson). Vielen Dank!",
        "status_declined": "Sie haben abgesagt. Schade, vielleicht beim nächsten Mal.",
        "status_waitlisted": "Sie stehen auf der Warteliste. Wir melden uns, sobald ein Platz frei wird.",
        "done_heading": "Vielen Dank",
        "error_heading": "Dieser Link funktioniert nicht",
        "error_malformed": "Der Link ist unvollständig. Bitte kopieren Sie ihn vollständig aus der E-Mail.",
        "error_forged": "Der Link ist ungültig.",
        "error_expired": "Der Link ist abgelaufen: die Antwortfrist ist vorbei.",
        "error_revoked": "Diese Einladung wurde zurückgezogen.",
        "error_closed": "Für diese Veranstaltung sind keine Antworten mehr möglich.",
        "error_input": "Bitte prüfen Sie Ihre Angaben.",
        "other_lang_label": "English",
    },
    "en": {
        "page_title": "Invitation: reply",
        "heading": "Your invitation",
        "label_event": "Event",
        "label_date": "Date",
        "label_venue": "Venue",
        "label_deadline": "Reply by",
        "label_accept_legend": "Accept",
        "label_guests": "Number of guests",
        "label_accept": "I will come",
        "label_decline": "I cannot come",
        "status_invited": "Please accept or decline.",
        "status_accepted": "You accepted ({guests} guests). Thank you!",
        "status_accepted_one": "You accepted (1 guest). Thank you!",
        "status_declined": "You declined. Maybe next time.",
        "status_waitlisted": "You are on the waiting list. We will write as soon as a seat is free.",
        "done_heading": "Thank you",
        "error_heading": "This link does not work",
        "error_malformed": "The link is incomplete. Please copy all of it from the e-mail.",
        "error_forged": "The link is not valid.",
        "error_expired": "The link has expired: the reply deadline has passed.",
        "error_revoked": "This invitation was withdrawn.",
        "error_closed": "This event no longer takes replies.",
        "error_input": "Please check your entries.",
        "other_lang_label": "Deutsch",
    },
}


@cache
def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))


def _page(lang: Lang, path: str, body: str, status: int = 200) -> HTMLResponse:
    other: Lang = "en" if lang == "de" else "de"
    page = _template("rsvp.html").substitute(
        lang=lang,
        page_title=html.escape(TEXT[lang]["page_title"]),
        other_lang=other,
        other_lang_href=html.escape(f"{path}?lang={other}"),
        other_lang_label=TEXT[lang]["other_lang_label"],
        body=body,
    )
    return HTMLResponse(
        page, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def _message(lang: Lang, path: str, heading: str, message: str, *, status: int, error: bool) -> HTMLResponse:
    body = _template("rsvp_message.html").substitute(
        heading=html.escape(heading),
        css="error" if error else "",
        role="alert" if error else "status",
        message=html.escape(message),
    )
    return _page(lang, path, body, status)


def _when(value: datetime, lang: Lang) -> str:
    local = value.astimezone(TZ)
    return local.strftime("%d.%m.%Y, %H:%M Uhr") if lang == "de" else local.strftime("%d %B %Y, %H:%M")


def _status_text(invitation: dict[str, Any], lang: Lang) -> str:
    guests = invitation.get("guests", 0)
    key = f"status_{invitation['status']}" + ("_one" if invitation["status"] == "accepted" and guests == 1 else "")
    return TEXT[lang][key].format(guests=guests)


def _form(lang: Lang, path: str, invitation: dict[str, Any], event: dict[str, Any]) -> str:
    t = TEXT[lang]
    guests_field = ""
    if event["guests_per_invitee"] > 0:
        options = "".join(
            f'<option value="{n}"{" selected" if n == invitation.get("guests", 0) else ""}>{n}</option>'
            for n in range(event["guests_per_invitee"] + 1)
        )
        guests_field = (
            f'<label for="guests">{html.escape(t["label_guests"])}</label>'
            f'<select id="guests" name="guests">{options}</select>'
        )
    return _template("rsvp_form.html").substitute(
        heading=html.escape(t["heading"]),
        label_event=t["label_event"],
        label_date=t["label_date"],
        label_venue=t["label_venue"],
        label_deadline=t["label_deadline"],
        label_accept_legend=t["label_accept_legend"],
        label_accept=t["label_accept"],
        label_decline=t["label_decline"],
        title=html.escape(event["title"]),
        starts_iso=event["starts_at"].isoformat(),
        starts=_when(event["starts_at"], lang),
        venue=html.escape(event["venue"]),
        deadline_iso=event["rsvp_deadline"].isoformat(),
        deadline=_when(event["rsvp_deadline"], lang),
        status_text=html.escape(_status_text(invitation, lang)),
        action=html.escape(f"{path}?lang={lang}"),
        guests_field=guests_field,
    )


_LINK_STATUS = {"malformed": 400, "forged": 403, "expired": 410, "revoked": 410}


def _link_error(lang: Lang, path: str, exc: domain.LinkError) -> HTMLResponse:
    return _message(
        lang,
        path,
        TEXT[lang]["error_heading"],
        TEXT[lang][f"error_{exc.reason}"],
        status=_LINK_STATUS[exc.reason],
        error=True,
    )


LangQuery = Annotated[Lang, Query(description="de (default) or en")]


@router.get("/rsvp/{token}", response_class=HTMLResponse, summary="The RSVP page (no login)")
async def rsvp_page(token: str, request: Request, uc: RsvpUseCases, lang: LangQuery = "de") -> HTMLResponse:
    """Show the invitation and a form to accept (with guests) or decline."""
    path = request.url.path
    try:
        invitation, event = await uc.open_link(token)
    except domain.LinkError as exc:
        return _link_error(lang, path, exc)
    if event["status"] != "scheduled":
        return _message(lang, path, TEXT[lang]["error_heading"], TEXT[lang]["error_closed"], status=409, error=True)
    return _page(lang, path, _form(lang, path, invitation, event))


# HEAD too: mail servers' link checks and some mail programs ask with HEAD before they open a link.
# A route of its own, so the OpenAPI names the two operations apart (one route with both methods
# gave both the same operation id).
router.add_api_route(
    "/rsvp/{token}",
    rsvp_page,
    methods=["HEAD"],
    response_class=HTMLResponse,
    summary="The RSVP page's status and headers, without the page (link checks)",
    operation_id="rsvp_page_head",
)


@router.post("/rsvp/{token}", response_class=HTMLResponse, summary="Answer an invitation (no login)")
async def rsvp_answer(token: str, request: Request, uc: RsvpUseCases, lang: LangQuery = "de") -> HTMLResponse:
    """Accept with a number of guests or decline; answer with the page showing the result."""
    path = request.url.path
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    answer = (form.get("answer") or [""])[0]
    try:
        guests = int((form.get("guests") or ["0"])[0])
    except ValueError:
        guests = -1
    if answer not in ("accept", "decline") or guests < 0:
        return _message(lang, path, TEXT[lang]["error_heading"], TEXT[lang]["error_input"], status=422, error=True)
    try:
        invitation = await uc.respond(token, accept=answer == "accept", guests=guests)
    except domain.LinkError as exc:
        return _link_error(lang, path, exc)
    except Problem as problem:
        key = "error_closed" if problem.status == 409 else "error_input"
        return _message(lang, path, TEXT[lang]["error_heading"], TEXT[lang][key], status=problem.status, error=True)
    return _message(lang, path, TEXT[lang]["done_heading"], _status_text(invitation, lang), status=200, error=False)

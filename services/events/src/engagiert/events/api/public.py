"""Serves HTTP: staff routes under /v1/municipalities/{ags}, the public RSVP page and the card check."""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from pathlib import Path
from string import Template
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from engagiert.events import domain
from engagiert.events.services import EventCreate, EventUpdate, Grant, Recognition, Reject
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["recognition"])
public_router = APIRouter(tags=["public"])

TZ = ZoneInfo("Europe/Berlin")
_TEMPLATES = Path(__file__).parent.parent / "templates"


def use_cases(request: Request) -> Recognition:
    """Return the use cases of this app."""
    factory = request.app.state.use_cases
    result: Recognition = factory()
    return result


UseCases = Annotated[Recognition, Depends(use_cases)]


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if not k.startswith("_") or k == "_id"}
    out["id"] = out.pop("_id")
    return out


# -- recognition events ------------------------------------------------------------------------


@router.post("/events", status_code=201, summary="Create a recognition event")
async def create_event(ags: str, body: EventCreate, _p: Staff, uc: UseCases) -> dict[str, Any]:
    """Create a recognition event (draft or scheduled)."""
    return _public(await uc.create_event(ags, body))


@router.get("/events", summary="List recognition events")
async def list_events(ags: str, _p: Reader, uc: UseCases) -> list[dict[str, Any]]:
    """List a municipality's recognition events."""
    return [_public(d) for d in await uc.repo.events_of(ags)]


@router.get("/events/{event_id}", summary="Show a recognition event with its counts")
async def get_event(ags: str, event_id: str, _p: Reader, uc: UseCases) -> dict[str, Any]:
    """Show an event, its seats taken and its invitations per status."""
    return _public(await uc.summary(ags, event_id))


@router.patch("/events/{event_id}", summary="Change, schedule, cancel or complete an event")
async def patch_event(ags: str, event_id: str, body: EventUpdate, _p: Staff, uc: UseCases) -> dict[str, Any]:
    """Change an event or move it to another status."""
    return _public(await uc.update_event(ags, event_id, body))


# -- invitations -------------------------------------------------------------------------------


@router.post("/events/{event_id}/invitations/preview", summary="Preview invitations by criteria")
async def preview(
    ags: str, event_id: str, criteria: domain.InvitationCriteria, _p: Staff, uc: UseCases
) -> dict[str, Any]:
    """Show how many members match, how many would be invited and how many would wait."""
    return await uc.preview(ags, event_id, criteria)


@router.post("/events/{event_id}/invitations/issue", summary="Issue invitations by criteria (idempotent)")
async def issue(
    ags: str, event_id: str, criteria: domain.InvitationCriteria, _p: Staff, uc: UseCases
) -> dict[str, Any]:
    """Invite every matching member once; offers up to the capacity, the rest on the waitlist."""
    return await uc.issue(ags, event_id, criteria)


@router.get("/events/{event_id}/invitations", summary="List invitations")
async def list_invitations(
    ags: str,
    event_id: str,
    _p: Reader,
    uc: UseCases,
    status: Literal["invited", "waitlisted", "accepted", "declined"] | None = None,
) -> list[dict[str, Any]]:
    """List an event's invitations in issue order."""
    return [_public(d) for d in await uc.invitations(ags, event_id, status)]


class AttendanceBody(BaseModel):
    """A check-in (or a no-show)."""

    model_config = ConfigDict(extra="forbid")

    attended: bool = True


@router.post("/events/{event_id}/invitations/{invitation_id}/attendance", summary="Check in an invitee")
async def attendance(
    ags: str, event_id: str, invitation_id: str, body: AttendanceBody, _p: Staff, uc: UseCases
) -> dict[str, Any]:
    """Record that an accepted invitee attended (or did not)."""
    return _public(await uc.record_attendance(ags, event_id, invitation_id, body.attended))


@router.get(
    "/events/{event_id}/attendees.csv",
    summary="The list for the venue (CSV, ';'-separated)",
    response_class=PlainTextResponse,
)
async def attendees_csv(ags: str, event_id: str, _p: Staff, uc: UseCases) -> PlainTextResponse:
    """Return accepted invitees with their guests and check-in state."""
    text = await uc.venue_csv(ags, event_id)
    return PlainTextResponse(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="teilnehmende-{event_id}.csv"'},
    )


# -- honours -----------------------------------------------------------------------------------


@router.get("/honour-rules", summary="The municipality's honour rules")
async def get_rules(ags: str, _p: Reader, uc: UseCases) -> domain.HonourRules:
    """Show the rules in force (state defaults where the municipality set none)."""
    return await uc.rules(ags)


@router.put("/honour-rules", summary="Set the municipality's honour rules")
async def put_rules(ags: str, body: domain.HonourRules, _p: Staff, uc: UseCases) -> domain.HonourRules:
    """Replace the municipality's rules over the state defaults."""
    return await uc.put_rules(ags, body)


@router.get("/honours", summary="List honours")
async def list_honours(
    ags: str,
    _p: Reader,
    uc: UseCases,
    status: Literal["proposed", "granted", "rejected", "expired"] | None = None,
) -> list[dict[str, Any]]:
    """List honours, proposed ones first for staff to decide."""
    docs = await uc.repo.honours_of(ags, status=status)
    return [_public({k: v for k, v in d.items() if k != "verification_code"}) for d in docs]


class LocalAwardBody(BaseModel):
    """A local award staff propose for a member."""

    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)


@router.post("/honours", status_code=201, summary="Propose a local award")
async def propose_local_award(ags: str, body: LocalAwardBody, _p: Staff, uc: UseCases) -> dict[str, Any]:
    """Propose a local award for a member."""
    return _public(await uc.propose_local_award(ags, body.member_id, body.title))


@router.post("/honours/{honour_id}/grant", summary="Grant a proposed honour")
async def grant(ags: str, honour_id: str, body: Grant, _p: Staff, uc: UseCases) -> dict[str, Any]:
    """Grant an honour: card number, validity and a verification code checkable offline."""
    return _public(await uc.grant(ags, honour_id, body))


@router.post("/honours/{honour_id}/reject", summary="Reject a proposed honour")
async def reject(ags: str, honour_id: str, body: Reject, _p: Staff, uc: UseCases) -> dict[str, Any]:
    """Reject an honour with a reason."""
    return _public(await uc.reject(ags, honour_id, body))


@public_router.get("/v1/honours/verify/{code}", summary="Check a card's verification code (public)")
async def verify(code: str, uc: UseCases) -> dict[str, Any]:
    """Answer whether a card's code is genuine and valid; no personal data."""
    try:
        return await uc.verify_card(code)
    except domain.LinkError as exc:
        status = 410 if exc.reason == "expired" else 404
        raise Problem(status, "Invalid card code", f"the code is {exc.reason}") from None


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


_LINK_STATUS = {"malformed": 400, "forged": 403, "expired": 410}


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


@public_router.get("/rsvp/{token}", response_class=HTMLResponse, summary="The RSVP page (no login)")
async def rsvp_page(token: str, request: Request, uc: UseCases, lang: LangQuery = "de") -> HTMLResponse:
    """Show the invitation and a form to accept (with guests) or decline."""
    path = request.url.path
    try:
        invitation, event = await uc.open_link(token)
    except domain.LinkError as exc:
        return _link_error(lang, path, exc)
    if event["status"] != "scheduled":
        return _message(lang, path, TEXT[lang]["error_heading"], TEXT[lang]["error_closed"], status=409, error=True)
    return _page(lang, path, _form(lang, path, invitation, event))


@public_router.post("/rsvp/{token}", response_class=HTMLResponse, summary="Answer an invitation (no login)")
async def rsvp_answer(token: str, request: Request, uc: UseCases, lang: LangQuery = "de") -> HTMLResponse:
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

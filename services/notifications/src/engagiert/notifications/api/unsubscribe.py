"""Serves the unsubscribe links without login: the confirmation page (GET, HEAD) and the withdrawal (POST, RFC 8058).

A mail program's one-click POST (``List-Unsubscribe=One-Click``, form-encoded) and the page's
button post to the same address and get the same answer: 200 with the page saying it is done.
GET only shows the page, since link scanners open links. The language is ``?lang=`` (as on the
RSVP page), else the browser's ``Accept-Language``, else German.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from engagiert.notifications.domain import DEFAULT_COLOUR
from engagiert.notifications.rendering import complete_branding
from engagiert.notifications.services import Branding, Unsubscribe
from engagiert.notifications.services.unsubscribe import UNSUBSCRIBE_PATH
from engagiert.shared.signing import LinkError

router = APIRouter(tags=["public"])

Lang = Literal["de", "en"]

TEXT: dict[str, dict[str, str]] = {
    "de": {
        "heading": "Keine E-Mails mehr erhalten",
        "explain": "Mit einem Klick auf die Schaltfläche ziehen Sie Ihre Einwilligung zurück, "
        "von uns per E-Mail angeschrieben zu werden: Sie erhalten dann keine Einladungen, "
        "Erinnerungen und Rundschreiben per E-Mail mehr, auch keine Bestätigungen.",
        "others_stay": "Haben Sie eingewilligt, dass wir Ihnen per Post schreiben oder Sie anrufen, "
        "bleibt das bestehen.",
        "button": "E-Mails abbestellen",
        "done_heading": "Sie sind abgemeldet",
        "done": "Sie erhalten von uns keine E-Mails mehr. Wenn Sie es sich anders überlegen, "
        "melden Sie sich gern bei uns.",
        "contact": "So erreichen Sie uns:",
        "email": "E-Mail",
        "phone": "Telefon",
        "error_heading": "Dieser Link funktioniert nicht",
        "error_malformed": "Der Link ist unvollständig. Bitte kopieren Sie ihn vollständig aus der E-Mail.",
        "error_forged": "Der Link ist ungültig.",
        "error_expired": "Der Link ist abgelaufen. Bitte nutzen Sie den Link aus einer neueren E-Mail "
        "oder wenden Sie sich an die Anlaufstelle, die Ihnen geschrieben hat.",
        "error_revoked": "Der Link ist ungültig.",
        "other_lang_label": "English",
    },
    "en": {
        "heading": "Stop receiving emails",
        "explain": "With the button below you withdraw your consent to be contacted by email: you will "
        "no longer receive invitations, reminders, circulars or confirmations by email.",
        "others_stay": "If you agreed to letters by post or to phone calls, that stays as it is.",
        "button": "Unsubscribe from emails",
        "done_heading": "You are unsubscribed",
        "done": "You will receive no more emails from us. If you change your mind, please get in touch.",
        "contact": "How to reach us:",
        "email": "Email",
        "phone": "Phone",
        "error_heading": "This link does not work",
        "error_malformed": "The link is incomplete. Please copy all of it from the email.",
        "error_forged": "The link is not valid.",
        "error_expired": "The link has expired. Please use the link of a more recent email, or contact "
        "the office that wrote to you.",
        "error_revoked": "The link is not valid.",
        "other_lang_label": "Deutsch",
    },
}

_LINK_STATUS = {"malformed": 400, "forged": 403, "expired": 410, "revoked": 410}

_PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "pages")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _unsubscribe(request: Request) -> Unsubscribe:
    service: Unsubscribe = request.app.state.notifications.unsubscribe
    return service


def _branding(request: Request) -> Branding:
    service: Branding = request.app.state.notifications.branding
    return service


UnsubscribeService = Annotated[Unsubscribe, Depends(_unsubscribe)]
BrandingService = Annotated[Branding, Depends(_branding)]
LangQuery = Annotated[Lang | None, Query(description="de or en (default: the browser's language, else de)")]


def page_language(lang: str | None, accept_language: str | None) -> Lang:
    """Return ``lang`` if given, else the first of de/en the browser prefers (``Accept-Language``), else de."""
    if lang in ("de", "en"):
        return lang  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in ("de", "en") and quality > 0:
            ranked.append((-quality, i, primary))
    return sorted(ranked)[0][2] if ranked else "de"  # type: ignore[return-value]


def _render(
    request: Request,
    lang: Lang,
    *,
    heading: str,
    message: str = "",
    error: bool = False,
    form: bool = False,
    branding: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    path = request.url.path
    other: Lang = "en" if lang == "de" else "de"
    # Every value the page reads, also before the registry's profile of the municipality arrived.
    brand = complete_branding(branding) if branding is not None else None
    page = _PAGES.get_template("unsubscribe.html").render(
        lang=lang,
        t=TEXT[lang],
        heading=heading,
        message=message,
        error=error,
        form=form,
        branding=brand,
        colour=(brand or {}).get("colour") or DEFAULT_COLOUR,
        action=f"{path}?lang={lang}",
        other_lang=other,
        other_lang_href=f"{path}?lang={other}",
    )
    return HTMLResponse(
        page, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def _link_error(request: Request, lang: Lang, exc: LinkError) -> HTMLResponse:
    t = TEXT[lang]
    return _render(
        request,
        lang,
        heading=t["error_heading"],
        message=t[f"error_{exc.reason}"],
        error=True,
        status=_LINK_STATUS[exc.reason],
    )


# HEAD too: mail servers' link checks and some mail programs ask with HEAD before they open a link.
@router.api_route(
    UNSUBSCRIBE_PATH, methods=["GET", "HEAD"], response_class=HTMLResponse, summary="The unsubscribe page (no login)"
)
async def unsubscribe_page(
    token: str, request: Request, service: UnsubscribeService, brandings: BrandingService, lang: LangQuery = None
) -> HTMLResponse:
    """Show what the link does and a button that confirms it; nothing changes until the button is pressed."""
    language = page_language(lang, request.headers.get("accept-language"))
    try:
        link = service.open(token)
    except LinkError as exc:
        return _link_error(request, language, exc)
    branding = await brandings.branding_of(link.municipality)
    return _render(request, language, heading=TEXT[language]["heading"], form=True, branding=branding)


@router.post(UNSUBSCRIBE_PATH, response_class=HTMLResponse, summary="Unsubscribe from e-mails (RFC 8058 one-click)")
async def unsubscribe(
    token: str, request: Request, service: UnsubscribeService, brandings: BrandingService, lang: LangQuery = None
) -> HTMLResponse:
    """Withdraw the consent to e-mail (through the registry); answer 200 with the page saying so."""
    language = page_language(lang, request.headers.get("accept-language"))
    try:
        link = await service.withdraw(token)
    except LinkError as exc:
        return _link_error(request, language, exc)
    branding = await brandings.branding_of(link.municipality)
    t = TEXT[language]
    return _render(request, language, heading=t["done_heading"], message=t["done"], branding=branding)

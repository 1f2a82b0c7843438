"""Renders the pages: one Jinja2 environment, the layout's context added to every page."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from engagiert.console.csrf import csrf_token
from engagiert.console.forms import row_error
from engagiert.console.i18n import Lang, Translator, language

TEMPLATES = Path(__file__).parent / "templates"
TZ = ZoneInfo("Europe/Berlin")
LANG_COOKIE = "lang"

templates = Jinja2Templates(directory=TEMPLATES)
templates.env.autoescape = True


NAV: tuple[tuple[str, str], ...] = (
    ("nav.start", "/"),
    ("nav.members", "/members"),
    ("nav.import", "/import"),
    ("nav.organisations", "/organisations"),
    ("nav.events", "/events"),
    ("nav.honours", "/honours"),
    ("nav.letters", "/letters"),
    ("nav.network_figures", "/network"),
    ("nav.practice", "/practice"),
)
"""The main navigation: text id and path below ``/m/{ags}``; a new page area adds its entry here."""


def request_language(request: Request) -> Lang:
    """Return the language of the request: the cookie the switcher sets, else German."""
    return language(request.cookies.get(LANG_COOKIE))


def _number(value: float | int | None, lang: str = "de", digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}" if isinstance(value, float) and value % 1 else f"{int(value):,}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "de" else text


def _date(value: date | datetime | str | None, lang: str = "de") -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        local = value.astimezone(TZ) if value.tzinfo else value
        return local.strftime("%d.%m.%Y, %H:%M") if lang == "de" else local.strftime("%Y-%m-%d %H:%M")
    return value.strftime("%d.%m.%Y") if lang == "de" else value.isoformat()


templates.env.filters["number"] = _number
templates.env.filters["date"] = _date
templates.env.filters["pairs"] = lambda items: [(i, i) for i in items]
templates.env.filters["labelled"] = lambda items, t, prefix: [(i, t(prefix + i)) for i in items]


def _query(params: dict[str, Any], **extra: Any) -> str:
    """Return the non-empty ``params`` (and ``extra``) as a query string."""
    return urlencode({k: v for k, v in {**params, **extra}.items() if v not in (None, "")})


templates.env.filters["query"] = _query
templates.env.filters["row_error"] = row_error


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200) -> Response:
    """Return the page ``name`` with the layout's context: language, texts, user, municipality, CSRF token."""
    lang = request_language(request)
    state = request.state
    session = request.scope.get("session")
    page: dict[str, Any] = {
        "lang": lang,
        "t": Translator(lang),
        "nav": NAV,
        "switch_choices": getattr(state, "switch_choices", []),
        "user": getattr(state, "user", None),
        "tenant": getattr(state, "tenant", None),
        "csrf_token": csrf_token(request) if session is not None else "",
        "flash": session.pop("flash", None) if session is not None else None,
        "path": request.url.path,
        "full_path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    page.update(context or {})
    return templates.TemplateResponse(request, name, page, status_code=status, headers={"Cache-Control": "no-store"})


def flash(request: Request, key: str, **params: Any) -> None:
    """Show the text ``key`` on the next page (after a redirect)."""
    request.session["flash"] = {"key": key, "params": params}

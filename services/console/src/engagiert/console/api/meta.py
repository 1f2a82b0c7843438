"""Health, the language switch, the municipality switch and the front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from engagiert.console.api.auth import safe_next
from engagiert.console.clients import NotFound
from engagiert.console.deps import CurrentUser, Services
from engagiert.console.errors import PageNotFound
from engagiert.console.i18n import LANGUAGES
from engagiert.console.oidc import Oidc
from engagiert.console.rendering import LANG_COOKIE, render

router = APIRouter(tags=["console"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Answer that the process runs."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    """Answer 200 when the sign-in provider's discovery document loads."""
    oidc: Oidc = request.app.state.oidc
    try:
        await oidc.metadata()
    except Exception:
        return JSONResponse({"status": "unavailable", "oidc": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/lang/{code}", summary="Switch the language (a link: works without JavaScript)")
async def switch_language(
    request: Request, code: str, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """Remember the language in a cookie and go back to the page."""
    if code not in LANGUAGES:
        raise PageNotFound
    response = RedirectResponse(safe_next(next), status_code=303)
    secure = request.app.state.settings.secure_cookies
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, httponly=True, samesite="lax", secure=secure)
    return response


@router.get("/switch", summary="Open another of the user's municipalities")
async def switch_municipality(user: CurrentUser, ags: Annotated[str, Query(pattern=r"^[0-9]{8}$")]) -> Response:
    """Go to the start page of municipality ``ags``."""
    if not user.may_act_for(ags):
        raise PageNotFound
    return RedirectResponse(f"/m/{ags}/", status_code=303)


@router.get("/", summary="The front door")
async def front_door(request: Request, user: CurrentUser, api: Services) -> Response:
    """Open the user's municipality, or let a user of several choose."""
    if not user.all_municipalities and len(user.municipalities) == 1:
        return RedirectResponse(f"/m/{user.municipalities[0]}/", status_code=303)
    if user.all_municipalities:
        choices = [(m.id, m.name) for m in await api.registry.municipalities()]
    else:
        choices = []
        for ags in user.municipalities:
            try:
                choices.append((ags, (await api.registry.municipality(ags)).name))
            except NotFound:
                choices.append((ags, ""))  # not in the registry yet: listed without a link
    return render(request, "choose.html", {"choices": sorted(choices, key=lambda c: (not c[1], c[1]))})

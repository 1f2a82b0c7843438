"""Sign-in and sign-out: the OpenID Connect redirects, the callback, RP-initiated logout."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from engagiert.console.deps import TOKENS_KEY, USER_KEY
from engagiert.console.errors import error_page
from engagiert.console.oidc import OAuthError, Oidc, Tokens, User
from engagiert.console.rendering import render, request_language
from engagiert.console.sessions import ROTATE
from engagiert.shared.logging import get_logger

router = APIRouter(prefix="/auth", tags=["sign-in"])
log = get_logger(__name__)
_NEXT = "next_path"


def safe_next(value: str | None) -> str:
    """Return a local path to go to after sign-in (never another host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _oidc(request: Request) -> Oidc:
    oidc: Oidc = request.app.state.oidc
    return oidc


@router.get("/login", summary="Send the browser to the provider's sign-in page")
async def login(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """Redirect to the provider with state, nonce and a PKCE challenge; come back to ``next``."""
    if request.session.get(USER_KEY):
        return RedirectResponse(safe_next(next), status_code=303)
    request.session[_NEXT] = safe_next(next)
    try:
        return await _oidc(request).login_redirect(request, ui_locales=request_language(request))
    except httpx.HTTPError:
        log.warning("oidc_provider_unreachable")
        return error_page(request, 503, title="errors.unavailable_title", message="errors.signin_unavailable")


@router.get("/callback", summary="Finish sign-in: exchange the code for tokens")
async def callback(request: Request) -> Response:
    """Exchange the code (with the PKCE verifier), keep the tokens in the session, rotate its id."""
    try:
        tokens = await _oidc(request).finish_login(request)
    except (OAuthError, httpx.HTTPError) as exc:
        log.info("signin_failed", error=type(exc).__name__)
        return error_page(request, 400, title="auth.failed_title", message="auth.failed")
    user = User.from_access_token(tokens.access_token)
    target = safe_next(request.session.pop(_NEXT, None))
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({USER_KEY: user.to_session(), TOKENS_KEY: tokens.to_session(), ROTATE: True})
    if lang:
        request.session["lang"] = lang
    log.info("signed_in", subject=user.subject, roles=sorted(user.roles))
    return RedirectResponse(target, status_code=303)


@router.post("/logout", summary="Sign out here and at the provider")
async def logout(request: Request) -> Response:
    """End the console's session, then the provider's (its end-session endpoint comes back here)."""
    stored = request.session.get(TOKENS_KEY)
    id_token = Tokens.from_session(stored).id_token if stored else None
    request.session.clear()
    back = str(request.app.state.settings.public_base_url).rstrip("/") + "/auth/logged-out"
    try:
        url = await _oidc(request).logout_url(id_token=id_token, post_logout_redirect_uri=back)
    except (httpx.HTTPError, RuntimeError):
        url = "/auth/logged-out"
    return RedirectResponse(url, status_code=303)


@router.get("/logged-out", summary="The page after sign-out")
async def logged_out(request: Request) -> Response:
    """Say that the user is signed out, with a link to sign in again."""
    return render(request, "logged_out.html", {"login_url": "/auth/login?next=" + quote("/", safe="")})

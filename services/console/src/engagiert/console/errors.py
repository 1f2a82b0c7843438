"""Turns every failure into a page a person can read, in their language; never a stack trace."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from engagiert.console import clients
from engagiert.console.csrf import CsrfRefused
from engagiert.console.rendering import render
from engagiert.shared.logging import get_logger

log = get_logger(__name__)


class LoginRequired(Exception):
    """The request needs a signed-in user (or the session ended)."""


class PageNotFound(Exception):
    """The page does not exist for this user (also: another municipality's page)."""


class MunicipalityMissing(Exception):
    """One of the user's municipalities is not (yet) in the registry: a network admin creates it."""


class PageForbidden(Exception):
    """The user's role may not do this (a reader who tries to write)."""


def login_redirect(request: Request) -> RedirectResponse:
    """Return a redirect to sign-in that comes back to the page asked for (GET) or the start page."""
    target = request.url.path if request.method == "GET" else "/"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"/auth/login?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, status: int, *, title: str, message: str) -> Response:
    """Return the error page with ``status``; titles and messages are text ids."""
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)


def install_error_pages(app: FastAPI) -> None:
    """Make ``app`` answer errors with pages: 404, 403, sign-in, unavailable services, crashes."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        return login_redirect(request)

    @app.exception_handler(clients.Unauthorized)
    async def _token_refused(request: Request, _exc: clients.Unauthorized) -> Response:
        request.session.clear()
        return login_redirect(request)

    @app.exception_handler(PageNotFound)
    @app.exception_handler(clients.NotFound)
    async def _not_found(request: Request, _exc: Exception) -> Response:
        return error_page(request, 404, title="errors.not_found_title", message="errors.not_found")

    @app.exception_handler(MunicipalityMissing)
    async def _missing(request: Request, _exc: Exception) -> Response:
        title, message = "errors.municipality_missing_title", "errors.municipality_missing"
        return error_page(request, 404, title=title, message=message)

    @app.exception_handler(PageForbidden)
    @app.exception_handler(clients.Forbidden)
    async def _forbidden(request: Request, _exc: Exception) -> Response:
        return error_page(request, 403, title="errors.forbidden_title", message="errors.forbidden")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        log.info("csrf_refused", path=request.url.path)
        return error_page(request, 403, title="errors.forbidden_title", message="errors.csrf")

    @app.exception_handler(clients.Unavailable)
    async def _unavailable(request: Request, exc: clients.Unavailable) -> Response:
        log.warning("service_unavailable", service=exc.service, path=request.url.path)
        return error_page(request, 503, title="errors.unavailable_title", message="errors.unavailable")

    @app.exception_handler(clients.ServiceError)
    async def _service_error(request: Request, exc: clients.ServiceError) -> Response:
        # A refusal no form took care of: show it as a page, in German, without the service's wording.
        log.info("service_refused", service=exc.service, status=exc.status, path=request.url.path)
        status = exc.status if 400 <= exc.status < 500 else 502
        return error_page(request, status, title="errors.refused_title", message="errors.refused")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, 404, title="errors.not_found_title", message="errors.not_found")
        if exc.status_code == 405:
            return error_page(request, 405, title="errors.method_title", message="errors.method")
        return error_page(request, exc.status_code, title="errors.refused_title", message="errors.refused")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return error_page(request, 500, title="errors.crash_title", message="errors.crash")

"""Guards every state-changing request with a per-session CSRF token (form field or header).

Every form carries ``<input type="hidden" name="csrf_token">`` (the ``csrf()`` macro); htmx
sends the same token as the ``X-CSRF-Token`` header. The guard is one app-wide dependency, so
no route can forget it; a request without the session's token gets the 403 page.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_KEY = "csrf"


class CsrfRefused(Exception):
    """A state-changing request came without the session's CSRF token."""


def csrf_token(request: Request) -> str:
    """Return the session's CSRF token, creating it on first use."""
    token = request.session.get(_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[_KEY] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Refuse an unsafe request whose form field or header does not carry the session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(_KEY)
    given = request.headers.get(HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(FIELD)
            given = value if isinstance(value, str) else None
    # compare_digest: the comparison takes the same time however much of the token matches.
    if not expected or not given or not hmac.compare_digest(str(expected), given):
        raise CsrfRefused

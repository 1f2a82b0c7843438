"""Guards every request at the ASGI edge, before routing, parsing and authentication.

- :class:`BodyLimitMiddleware` refuses a body larger than its route's limit with 413 while it
  streams in (a ``Content-Length`` over the limit is refused before a byte is read).
- :class:`InputGuardMiddleware` refuses control characters (U+0000-U+001F except tab, line feed
  and carriage return) in the path, the query and text bodies with 422: PostgreSQL, under the
  MongoDB-wire store, rejects ``\\u0000`` and would log the document that carried it.
- :class:`CrashGuardMiddleware` answers an unexpected exception with one logged 500
  problem+json and keeps the connection usable (Starlette's own handler re-raises, so the
  server logged the traceback a second time and closed the connection without saying so).
- :class:`SecurityHeadersMiddleware` adds ``nosniff`` and ``Referrer-Policy`` to every response,
  a strict Content-Security-Policy (no inline script; inline ``<style>`` blocks allowed by hash)
  and ``frame-ancestors 'none'`` to every HTML response, and ``Cache-Control: no-store`` to the
  responses of token routes (RSVP links, card codes).

Routes opt into their own limits through :class:`RouteRules` (``ServiceRuntime.edge``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engagiert.shared.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

# C0 controls but tab, LF and CR: as raw bytes, as JSON escapes and as percent escapes.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])")
_CONTROL_PERCENT = re.compile(rb"%(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])")
_CARRY = 16  # bytes kept from the previous chunk so that an escape split across chunks is seen


class BodyTooLarge(HTTPException):
    """Raised while a body streams in and passes its route's limit: answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class ControlCharacters(HTTPException):
    """Raised when a request carries control characters: answered 422."""

    def __init__(self, where: str) -> None:
        super().__init__(422, f"the {where} contains control characters (U+0000-U+001F other than tab and newlines)")


@dataclass(kw_only=True)
class RouteRule:
    """What one route template allows: its body limit, its rate limit, whether its path holds a token."""

    template: str
    methods: frozenset[str] | None = None
    max_body_bytes: int | None = None
    rate: str | None = None
    token: bool = False
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = compile_path(self.template)[0]

    def matches(self, scope: Scope) -> bool:
        """Return True when ``scope``'s method and path fall under this rule."""
        if self.methods is not None and scope.get("method") not in self.methods:
            return False
        return self.regex.match(scope.get("path", "")) is not None


@dataclass(kw_only=True)
class RouteRules:
    """The per-route rules of one service (filled by ``ServiceRuntime.edge``)."""

    default_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rules: list[RouteRule] = field(default_factory=list)

    def add(self, rule: RouteRule) -> None:
        """Add ``rule``; an earlier rule for the same request wins."""
        self.rules.append(rule)

    def find(self, scope: Scope, attribute: str) -> RouteRule | None:
        """Return the first rule for ``scope`` that sets ``attribute``."""
        for rule in self.rules:
            if getattr(rule, attribute) and rule.matches(scope):
                return rule
        return None

    def max_body_bytes(self, scope: Scope) -> int:
        """Return the body limit of ``scope``'s route."""
        rule = self.find(scope, "max_body_bytes")
        return rule.max_body_bytes if rule and rule.max_body_bytes else self.default_max_body_bytes

    def is_token_route(self, scope: Scope) -> bool:
        """Return True when ``scope``'s path carries a secret (an RSVP token, a card code)."""
        return self.find(scope, "token") is not None

    @property
    def token_templates(self) -> list[str]:
        """Return the templates of the routes whose path carries a secret."""
        return [r.template for r in self.rules if r.token]


async def send_problem(
    send: Send, status: int, title: str, detail: str, *, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete problem+json response from a middleware."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class BodyLimitMiddleware:
    """Refuse bodies over the route's limit with 413, counting bytes as they stream in."""

    def __init__(self, app: ASGIApp, *, rules: RouteRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.rules.max_body_bytes(scope)
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_problem(send, 400, "Bad request", "Content-Length is not a number")
                return
            if int(length) > limit:
                # Refused before a byte is read: the server stops reading and closes the connection.
                await send_problem(send, 413, "Content too large", f"the request body is larger than {limit} bytes")
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except BodyTooLarge:
            if started:
                raise
            await send_problem(send, 413, "Content too large", f"the request body is larger than {limit} bytes")


_TEXT_TYPES = (b"application/json", b"application/x-www-form-urlencoded", b"text/", b"multipart/form-data")


class InputGuardMiddleware:
    """Refuse control characters in the path, the query and text bodies with 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = self._where_in_url(scope)
        if where is not None:
            await send_problem(send, 422, "Invalid request", ControlCharacters(where).detail)
            return
        content_type = (_header(scope, b"content-type") or b"").lower()
        is_json = content_type.startswith(b"application/json") or b"+json" in content_type.split(b";")[0]
        is_form = content_type.startswith(b"application/x-www-form-urlencoded")
        if not (is_json or is_form or content_type.startswith(_TEXT_TYPES)):
            await self.app(scope, receive, send)
            return
        patterns = [_CONTROL_BYTES, *([_CONTROL_JSON] if is_json else []), *([_CONTROL_PERCENT] if is_form else [])]
        tail = b""

        async def guarded() -> Message:
            nonlocal tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = tail + message.get("body", b"")
                if any(p.search(chunk) for p in patterns):
                    raise ControlCharacters("body")
                tail = chunk[-_CARRY:]
            return message

        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded, watch)
        except ControlCharacters as exc:
            if started:
                raise
            await send_problem(send, 422, "Invalid request", exc.detail)

    @staticmethod
    def _where_in_url(scope: Scope) -> str | None:
        if _CONTROL_BYTES.search(scope.get("path", "").encode("utf-8", "surrogateescape")):
            return "path"
        query = scope.get("query_string", b"")
        if query and _CONTROL_BYTES.search(unquote_to_bytes(query.replace(b"+", b" "))):
            return "query"
        return None


class CrashGuardMiddleware:
    """Answer an unexpected exception with a logged 500 problem+json, once, without dropping the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            log.exception("unhandled_error", route=_route_template(scope), error=type(exc).__name__)
            await send_problem(send, 500, "Internal error", "the error was logged")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "")) or "-"


CSP_HTML = (
    "default-src 'none'; img-src 'self' data: https:; style-src 'self'{styles}; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""The policy of the service's own pages: no script at all, inline styles only by hash, never framed."""

CSP_DOCS = (
    "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net https://unpkg.com{scripts}; "
    "style-src 'self' https://cdn.jsdelivr.net https://unpkg.com https://fonts.googleapis.com{styles}; "
    "img-src 'self' data: https:; font-src https://fonts.gstatic.com; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""The policy of the API documentation pages: their scripts come from the CDN, their inline ones by hash."""

DOCS_PATHS = frozenset({"/docs", "/redoc", "/asyncapi", "/docs/oauth2-redirect"})
_INLINE = re.compile(rb"<(script|style)(?![^>]*\bsrc=)[^>]*>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_HTML_LIMIT = 2 * 1024 * 1024  # pages larger than this are passed through with a hash-less policy


def content_security_policy(html: bytes, *, docs: bool) -> str:
    """Return the CSP for ``html``: its inline ``<script>``/``<style>`` blocks allowed by SHA-256 hash."""
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for kind, content in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        hashes[kind.lower()].append(f" 'sha256-{digest}'")
    styles = "".join(hashes[b"style"])
    if docs:
        return CSP_DOCS.format(scripts="".join(hashes[b"script"]), styles=styles)
    return CSP_HTML.format(styles=styles)


class SecurityHeadersMiddleware:
    """Add nosniff and Referrer-Policy everywhere, a CSP to HTML, ``no-store`` to token routes."""

    def __init__(self, app: ASGIApp, *, rules: RouteRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token_route = self.rules.is_token_route(scope)
        docs = scope.get("path", "") in DOCS_PATHS
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def wrapped(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _SET_HERE]
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if token_route:
                    headers.append((b"cache-control", b"no-store"))
                else:
                    headers += [(k, v) for k, v in message.get("headers", []) if k.lower() == b"cache-control"]
                message = {**message, "headers": headers}
                if _is_html(headers):
                    start = message  # held back until the body is known, for the hashes
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if message.get("more_body", False) and size <= _HTML_LIMIT:
                return
            body = b"".join(chunks)
            policy = content_security_policy(body if size <= _HTML_LIMIT else b"", docs=docs)
            headers = [
                *start["headers"],
                (b"content-security-policy", policy.encode()),
                (b"x-frame-options", b"DENY"),
            ]
            await send({**start, "headers": headers})
            await send({**message, "body": body})
            chunks.clear()
            start_sent()

        def start_sent() -> None:
            nonlocal start
            start = None

        await self.app(scope, receive, wrapped)


_SET_HERE = frozenset(
    {b"x-content-type-options", b"referrer-policy", b"cache-control", b"content-security-policy", b"x-frame-options"}
)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/html") for k, v in headers)


def client_address(scope: Scope, *, trusted_proxies: Any) -> str:
    """Return the client: the peer, or behind trusted proxies the nearest untrusted ``X-Forwarded-For`` hop."""
    import ipaddress

    peer = (scope.get("client") or ("unknown", 0))[0]

    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted_proxies)

    if not trusted(peer):
        return str(peer)
    forwarded = (_header(scope, b"x-forwarded-for") or b"").decode("latin-1")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else str(peer)

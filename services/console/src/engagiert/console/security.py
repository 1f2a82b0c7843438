"""Adds the browser's protections to every answer: a strict content security policy, no framing, no referrer."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    """Sets CSP (scripts and styles only from the console itself), frame and referrer policies."""

    def __init__(self, app: ASGIApp, *, form_targets: str) -> None:
        self.app = app
        provider = urlsplit(form_targets)
        # form-action also covers the redirect after a form: sign-out goes on to the provider.
        origin = f"{provider.scheme}://{provider.netloc}" if provider.netloc else ""
        self.headers = {
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
            ).replace("  ", " "),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)

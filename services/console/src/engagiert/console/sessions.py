"""Keeps sign-in sessions on the server, in memory; the browser holds only an opaque, random id.

The cookie is HttpOnly, SameSite=Lax, Secure in production, and carries no tokens: the access,
refresh and ID tokens stay in this process. A session ends when unused for the idle timeout or
at the absolute timeout after sign-in. One console replica holds its own sessions, so several
replicas need sticky sessions at the Ingress (the Helm chart sets cookie affinity).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROTATE = "_rotate"
"""Set this key in ``request.session`` to give the session a new id (after sign-in: no fixation)."""


@dataclass(slots=True)
class _Entry:
    data: dict[str, Any]
    created: float
    seen: float = field(default=0.0)


class SessionStore:
    """Holds sessions by id with an idle and an absolute timeout; the oldest go first when full."""

    def __init__(
        self,
        *,
        idle_seconds: float,
        max_seconds: float,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle = idle_seconds
        self._max = max_seconds
        self._capacity = max_sessions
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, sid: str | None) -> dict[str, Any] | None:
        """Return the data of a live session (and mark it used), or None when unknown or timed out."""
        if not sid:
            return None
        entry = self._entries.get(sid)
        if entry is None:
            return None
        now = self._clock()
        if now - entry.seen > self._idle or now - entry.created > self._max:
            del self._entries[sid]
            return None
        entry.seen = now
        self._entries.move_to_end(sid)
        return entry.data

    def save(self, sid: str | None, data: dict[str, Any]) -> str:
        """Store ``data`` under ``sid`` (a new id when None); return the id."""
        now = self._clock()
        if sid is not None and sid in self._entries:
            entry = self._entries[sid]
            entry.data, entry.seen = data, now
            return sid
        new = secrets.token_urlsafe(32)
        self._entries[new] = _Entry(data=data, created=now, seen=now)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return new

    def rotate(self, sid: str | None, data: dict[str, Any]) -> str:
        """Move ``data`` to a fresh id with a fresh absolute timeout; the old id stops working."""
        self.drop(sid)
        return self.save(None, data)

    def drop(self, sid: str | None) -> None:
        """End a session."""
        if sid:
            self._entries.pop(sid, None)


class SessionMiddleware:
    """Gives each request ``request.session`` (a dict) backed by a :class:`SessionStore`."""

    def __init__(self, app: ASGIApp, *, store: SessionStore, cookie_name: str, secure: bool) -> None:
        self.app = app
        self.store = store
        self.cookie_name = cookie_name
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sid = self._cookie(scope)
        loaded = self.store.load(sid)
        session: dict[str, Any] = dict(loaded) if loaded is not None else {}
        scope["session"] = session
        if loaded is None:
            sid = None

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookie = self._commit(sid, session)
                if cookie:
                    headers.append("Set-Cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value.decode("latin-1"))
                if self.cookie_name in jar:
                    return jar[self.cookie_name].value
        return None

    def _commit(self, sid: str | None, session: dict[str, Any]) -> str | None:
        """Save the session and return the Set-Cookie value (None when nothing changes for the browser)."""
        if not session:
            if sid is None:
                return None
            self.store.drop(sid)
            return self._header("", max_age=0)
        new = self.store.rotate(sid, session) if session.pop(ROTATE, False) else self.store.save(sid, session)
        return None if new == sid else self._header(new)

    def _header(self, value: str, *, max_age: int | None = None) -> str:
        parts = [f"{self.cookie_name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if self.secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)

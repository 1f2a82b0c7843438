"""Wires the console: settings, sessions, sign-in, the service clients, routers, error pages; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from engagiert.console.api import ROUTERS
from engagiert.console.config import ConsoleSettings
from engagiert.console.csrf import verify_csrf
from engagiert.console.errors import install_error_pages
from engagiert.console.oidc import Oidc
from engagiert.console.security import SecurityHeaders
from engagiert.console.sessions import SessionMiddleware, SessionStore
from engagiert.shared.logging import configure_logging

STATIC = Path(__file__).parent / "static"


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    """Return the console's app, ready for uvicorn."""
    settings = settings or ConsoleSettings()
    configure_logging(level=settings.log_level, service="console")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.service_timeout_seconds, connect=5.0)
        app.state.http = {
            "registry": httpx.AsyncClient(base_url=settings.registry_url, timeout=timeout),
            "events": httpx.AsyncClient(base_url=settings.events_url, timeout=timeout),
            "notifications": httpx.AsyncClient(base_url=settings.notifications_url, timeout=timeout),
        }
        try:
            yield
        finally:
            for client in app.state.http.values():
                await client.aclose()

    app = FastAPI(
        title="engagiert console",
        description="The staff console of engagiert.",
        lifespan=lifespan,
        dependencies=[Depends(verify_csrf)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.oidc = Oidc(settings)
    app.state.municipality_names = {}
    store = SessionStore(idle_seconds=settings.session_idle_minutes * 60, max_seconds=settings.session_max_hours * 3600)
    app.state.sessions = store
    # The __Host- prefix binds the cookie to this host and path "/" (browsers only accept it with Secure).
    cookie = "__Host-engagiert-console" if settings.secure_cookies else "engagiert-console"
    app.add_middleware(SessionMiddleware, store=store, cookie_name=cookie, secure=settings.secure_cookies)
    app.add_middleware(SecurityHeaders, form_targets=settings.oidc_issuer)
    install_error_pages(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app


app = create_app()

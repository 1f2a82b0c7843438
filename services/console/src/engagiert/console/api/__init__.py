"""The console's routers, one per page area; ``ROUTERS`` is what ``main`` includes."""

from __future__ import annotations

from fastapi import APIRouter

from engagiert.console.api import auth, imports, members, meta, organisations, start

ROUTERS: tuple[APIRouter, ...] = (
    meta.router,
    auth.router,
    start.router,
    members.router,
    imports.router,
    organisations.router,
)

__all__ = ["ROUTERS"]

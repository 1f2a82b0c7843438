"""The console's routers, one per page area; ``ROUTERS`` is what ``main`` includes."""

from __future__ import annotations

from fastapi import APIRouter

from engagiert.console.api import (
    auth,
    events,
    honours,
    imports,
    letters,
    members,
    meta,
    network,
    network_figures,
    organisations,
    practice,
    start,
)

ROUTERS: tuple[APIRouter, ...] = (
    meta.router,
    auth.router,
    start.router,
    members.router,
    imports.router,
    organisations.router,
    events.router,
    honours.router,
    letters.router,
    network.router,
    network_figures.router,
    practice.router,
)

__all__ = ["ROUTERS"]

"""Serves the registry's HTTP API, one router per aggregate: parse, authorise, call a use case."""

from __future__ import annotations

from fastapi import APIRouter

from engagiert.registry.api import (
    erasure,
    figures,
    hours,
    import_export,
    keys,
    members,
    municipalities,
    organisations,
    practice_examples,
    systems,
)
from engagiert.registry.api.deps import get_service

ROUTERS: tuple[APIRouter, ...] = (
    municipalities.router,
    organisations.router,
    members.router,
    import_export.router,
    hours.router,
    erasure.router,
    practice_examples.router,
    figures.router,
    systems.router,
    keys.router,
)
"""The routers in the order the app includes them."""

__all__ = ["ROUTERS", "get_service"]

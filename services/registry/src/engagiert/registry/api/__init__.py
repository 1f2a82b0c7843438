"""Serves the registry's HTTP API (being split into one router per aggregate)."""

from engagiert.registry.api.members import ROUTERS, get_service

__all__ = ["ROUTERS", "get_service"]

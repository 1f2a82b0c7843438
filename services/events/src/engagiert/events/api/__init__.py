"""Serves the events service's HTTP API, one router per aggregate."""

from engagiert.events.api.public import public_router, router

__all__ = ["public_router", "router"]

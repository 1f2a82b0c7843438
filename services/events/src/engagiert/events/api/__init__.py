"""Serves the events service's HTTP API: one router per aggregate, and the pages without login."""

from engagiert.events.api import figures, honours, invitations, public, recognition_events

# In this order, so the OpenAPI document lists the paths as before the split.
ROUTERS = (
    recognition_events.router,
    invitations.router,
    honours.router,
    honours.defaults_router,
    public.router,
    figures.router,
)

__all__ = ["ROUTERS"]

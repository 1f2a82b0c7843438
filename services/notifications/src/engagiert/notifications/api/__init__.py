"""HTTP routes of notifications, one router per aggregate; ``ROUTERS`` is what the app includes, in order."""

from __future__ import annotations

from fastapi import APIRouter

from engagiert.notifications.api import branding, deliveries, unsubscribe

ROUTERS: tuple[APIRouter, ...] = (branding.router, deliveries.router, unsubscribe.router)
"""The routers main includes: templates and branding, the delivery log, the public unsubscribe page."""

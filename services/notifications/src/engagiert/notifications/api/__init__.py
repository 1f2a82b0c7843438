"""HTTP routes of notifications, one router per aggregate; ``ROUTERS`` is what the app includes, in order."""

from __future__ import annotations

from fastapi import APIRouter

from engagiert.notifications.api import branding, deliveries

ROUTERS: tuple[APIRouter, ...] = (branding.router, deliveries.router)
"""The routers main includes: templates and branding, then the delivery log."""

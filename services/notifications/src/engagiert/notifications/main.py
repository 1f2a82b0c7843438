"""Wires the notifications service: broker, HTTP app, store, lifespan; nothing else."""

from __future__ import annotations

from fastapi import FastAPI

from engagiert.notifications.config import NotificationsSettings
from engagiert.shared.runtime import ServiceRuntime


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """Return the notifications service's app, ready for uvicorn."""
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(settings, title="engagiert notifications", description="The notifications service of engagiert.")
    return runtime.app


app = create_app()

"""Wires the events service: broker, HTTP app, store, lifespan; nothing else."""

from __future__ import annotations

from fastapi import FastAPI

from engagiert.events.config import EventsSettings
from engagiert.shared.runtime import ServiceRuntime


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    """Return the events service's app, ready for uvicorn."""
    settings = settings or EventsSettings()
    runtime = ServiceRuntime(settings, title="engagiert events", description="The events service of engagiert.")
    return runtime.app


app = create_app()

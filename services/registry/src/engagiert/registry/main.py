"""Wires the registry service: broker, HTTP app, store, lifespan; nothing else."""

from __future__ import annotations

from fastapi import FastAPI

from engagiert.registry.config import RegistrySettings
from engagiert.shared.runtime import ServiceRuntime


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """Return the registry service's app, ready for uvicorn."""
    settings = settings or RegistrySettings()
    runtime = ServiceRuntime(settings, title="engagiert registry", description="The registry service of engagiert.")
    return runtime.app


app = create_app()

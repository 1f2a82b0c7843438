"""Fixtures of the events service's integration tests: an app on the real stack with its own database."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.events.config import EventsSettings
from engagiert.events.main import create_app
from engagiert.shared import topics
from engagiert.shared.testing import StackEndpoints, app_client, auth_header, skip_history


@dataclass
class Running:
    """An events app running on the real stack, its client, database and municipality."""

    app: FastAPI
    client: httpx.AsyncClient
    db: AsyncDatabase[dict[str, Any]]
    settings: EventsSettings
    ags: str
    headers: dict[str, str]

    @property
    def base(self) -> str:
        """Return the municipality's events URL."""
        return f"/v1/municipalities/{self.ags}/events"


def settings_for(stack: StackEndpoints, unique: Callable[[str], str]) -> EventsSettings:
    """Return settings with a database and consumer group of the test's own."""
    return EventsSettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=unique("test_events").replace("-", "_"),
        consumer_group=unique("test-events"),
        outbox_poll_seconds=0.2,
        public_base_url="http://testserver",
    )


@pytest.fixture
async def running(stack: StackEndpoints, unique: Callable[[str], str]) -> AsyncIterator[Running]:
    """Run the events app with its lifespan (real Kafka and store) for one test; drop its database after."""
    settings = settings_for(stack, unique)
    # The member topics are shared with every other test: read only what this test produces.
    await skip_history(
        stack.kafka_bootstrap_servers, settings.group_id, [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT]
    )
    app = create_app(settings)
    ags = f"99{random.randrange(10**6):06d}"
    async with app_client(app) as client:
        db = app.state.runtime.db
        try:
            yield Running(app, client, db, settings, ags, auth_header([ags], "staff"))
        finally:
            await db.client.drop_database(db.name)

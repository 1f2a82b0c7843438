"""Fixtures of the events service's integration tests: an app on the real stack with its own database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.events.config import EventsSettings
from engagiert.events.main import create_app
from engagiert.shared import topics
from engagiert.shared.settings import aiokafka_options
from engagiert.shared.testing import StackEndpoints, app_client, auth_header, free_port, skip_history


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
        scheduler_seconds=3600,  # one round at start; tests run the timed work themselves (or use `scheduled`)
    )


@pytest.fixture
async def running(stack: StackEndpoints, unique: Callable[[str], str]) -> AsyncIterator[Running]:
    """Run the events app with its lifespan (real Kafka and store) for one test; drop its database after."""
    async with _run(settings_for(stack, unique), stack) as r:
        yield r


@pytest.fixture
async def served(stack: StackEndpoints, unique: Callable[[str], str]) -> AsyncIterator[Running]:
    """Run the events app as ``running`` does and also serve it over real HTTP (for a browser).

    ``settings.public_base_url`` is the served address, so the RSVP links open in the browser.
    """
    port = free_port()
    settings = settings_for(stack, unique).model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    async with _run(settings, stack) as r:
        # The lifespan already runs (app_client): uvicorn only serves HTTP here.
        server = uvicorn.Server(uvicorn.Config(r.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.05)
            yield r
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def scheduled(stack: StackEndpoints, unique: Callable[[str], str]) -> AsyncIterator[Running]:
    """Run the events app as ``running`` does, with its background loop every 0.2 s."""
    async with _run(settings_for(stack, unique).model_copy(update={"scheduler_seconds": 0.2}), stack) as r:
        yield r


@contextlib.asynccontextmanager
async def _run(settings: EventsSettings, stack: StackEndpoints) -> AsyncIterator[Running]:
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


class TopicWindow:
    """The records appended to a topic since the window opened (read up to the end offsets at read time)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.start: dict[TopicPartition, int] = {}

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **aiokafka_options()
        )

    async def open(self) -> TopicWindow:
        """Remember where every partition ends now."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **aiokafka_options())
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        partitions = [TopicPartition(self.topic, p["partition"]) for t in described for p in t.get("partitions") or []]
        assert partitions, f"no partitions of {self.topic}"
        consumer = self._consumer()
        await consumer.start()
        try:
            self.start = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        return self

    async def read(self) -> list[dict[str, Any]]:
        """Return the CloudEvents (parsed JSON) written since :meth:`open`, in partition order."""
        consumer = self._consumer()
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            parts = list(self.start)
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            for tp, offset in self.start.items():
                consumer.seek(tp, offset)
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batch.items():
                    out.extend(json.loads(rec.value) for rec in records if rec.offset < ends[tp] and rec.value)
        finally:
            await consumer.stop()
        return out


@pytest.fixture
def topic_window(stack: StackEndpoints) -> Callable[[str], TopicWindow]:
    """Return a factory of :class:`TopicWindow` on the real broker (call ``await window.open()`` first)."""
    return lambda topic: TopicWindow(stack.kafka_bootstrap_servers, topic)

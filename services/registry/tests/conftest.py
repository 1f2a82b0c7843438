"""Fixtures of the registry tests: the app on the real stack with its own database, group and inbound topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.registry.config import RegistrySettings
from engagiert.registry.main import create_app
from engagiert.shared.testing import StackEndpoints, app_client, auth_header, only_test_systems

PADERBORN = "05774032"
BIELEFELD = "05711000"
ADMIN = auth_header(["*"], "network-admin")
STAFF_PB = auth_header([PADERBORN], "staff")
STAFF_BI = auth_header([BIELEFELD], "staff")
READER_PB = auth_header([PADERBORN], "reader")
SYSTEM_PB = auth_header([PADERBORN], "system")


@dataclass
class Registry:
    """A running registry app for one test."""

    client: httpx.AsyncClient
    db: AsyncDatabase[dict[str, Any]]
    inbound_topic: str
    confirmations_topic: str
    settings: RegistrySettings
    bootstrap: str


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """Poll an async predicate until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def registry(
    stack: StackEndpoints,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    kafka_topic: Callable[..., Awaitable[str]],
    unique: Callable[[str], str],
) -> AsyncIterator[Registry]:
    """Run the registry app with its own database, consumer group and inbound topic; both test municipalities exist."""
    topic = await kafka_topic("test.registry-inbound")
    confirmations = await kafka_topic("test.registry-confirmations")
    settings = RegistrySettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=unique("reg").replace("-", "_"),
        consumer_group=unique("reg-g"),
        inbound_topic=topic,
        confirmations_topic=confirmations,
        systems_pattern=only_test_systems(unique("s")),
        consumer_max_attempts=3,
        consumer_retry_backoff_seconds=0.05,
        outbox_poll_seconds=0.2,
    )
    app = create_app(settings)
    try:
        async with app_client(app) as client:
            for ags, name in ((PADERBORN, "Paderborn"), (BIELEFELD, "Bielefeld")):
                r = await client.post(
                    "/v1/municipalities", json={"ags": ags, "name": name, "kind": "Stadt"}, headers=ADMIN
                )
                assert r.status_code == 201, r.text
            yield Registry(
                client,
                mongo_client[settings.database_name],
                topic,
                confirmations,
                settings,
                stack.kafka_bootstrap_servers,
            )
    finally:
        await mongo_client.drop_database(settings.database_name)


def member_body(n: int | str, **extra: Any) -> dict[str, Any]:
    """Return a valid member registration."""
    body: dict[str, Any] = {
        "given_name": f"Anna{n}",
        "family_name": "Schmidt",
        "date_of_birth": "1980-05-01",
        "contact": {
            "email": f"anna{n}@example.org",
            "postal_address": {"street": "Am Abdinghof 11", "postal_code": "33098", "city": "Paderborn"},
        },
        "consent": {"channels": ["email"], "source": "Formular Anlaufstelle"},
        "engagements": [{"field": "Sport", "role": "Übungsleiterin", "since": "2015-03-01"}],
    }
    body.update(extra)
    return body

"""Pytest fixtures for integration tests on the real stack; load with ``pytest_plugins``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.shared.mongo import create_client
from engagiert.shared.testing.kafka import create_test_topics
from engagiert.shared.testing.stack import StackEndpoints, resolve_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[StackEndpoints]:
    """Give the session a running stack: from the environment, testcontainers or deploy/local."""
    with ExitStack() as exits:
        yield resolve_stack(exits)


@pytest.fixture(scope="session")
async def mongo_client(stack: StackEndpoints) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """Give a client of the test store (one per session's event loop)."""
    client = create_client(stack.mongodb_url, app_name="engagiert-tests")
    yield client
    await client.close()


@pytest.fixture
async def fresh_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """Give a test its own, empty database; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Return a maker of names unique to this test (groups, databases, ids)."""
    run = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{run}"


@pytest.fixture
def kafka_topic(stack: StackEndpoints) -> Callable[..., Awaitable[str]]:
    """Return a maker of throwaway topics (with their .dlq) on the test broker."""

    async def make(base: str = "test", partitions: int = 3) -> str:
        return await create_test_topics(stack.kafka_bootstrap_servers, base, partitions=partitions)

    return make

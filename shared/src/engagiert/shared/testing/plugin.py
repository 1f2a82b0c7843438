"""Pytest fixtures for integration tests on the real stack; load with ``pytest_plugins``."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.shared.mongo import create_client
from engagiert.shared.testing.kafka import caught_up_groups, create_test_topics, skip_since
from engagiert.shared.testing.stack import StackEndpoints, resolve_stack

_T = TypeVar("_T")


@pytest.fixture(scope="session")
def stack() -> Iterator[StackEndpoints]:
    """Give the session a running stack: from the environment, testcontainers or deploy/local.

    Tests write to the platform's own topics; at the session's end the stack's consumer groups
    that had read everything at its start skip those records (:func:`skip_since`), so a developer's
    local services do not work through them (and send their mails) when they next run.
    """
    with ExitStack() as exits:
        endpoints = resolve_stack(exits)
        marks = _housekeeping(caught_up_groups(endpoints.kafka_bootstrap_servers)) or {}
        yield endpoints
        if marks:
            _housekeeping(skip_since(endpoints.kafka_bootstrap_servers, marks))


def _housekeeping(work: Coroutine[Any, Any, _T]) -> _T | None:
    """Run ``work``; a broker that is away (a fault test left it stopped) never fails the session."""
    try:
        return asyncio.run(work)
    except Exception as exc:
        warnings.warn(f"the stack's consumer groups were not moved past the tests' records: {exc!r}", stacklevel=2)
        return None


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

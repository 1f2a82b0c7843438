"""Proves on the real broker that a bench's records are skipped for the stack's groups, and only for those that were caught up."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engagiert.shared.settings import aiokafka_options
from engagiert.shared.testing import StackEndpoints
from engagiert.shared.testing.kafka import caught_up_groups, commit_offsets, skip_since
from engagiert.shared.testing.kafka import produce_records as produce

pytestmark = pytest.mark.integration


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        return (await admin.list_consumer_group_offsets(group, partitions=[tp]))[tp].offset
    finally:
        await admin.close()


def _records(topic: str, n: int) -> list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]:
    return [(topic, b"k", f"v{i}".encode(), []) for i in range(n)]


async def test_only_groups_caught_up_at_the_mark_and_not_read_on_skip_the_records_written_since(
    stack: StackEndpoints, kafka_topic: Callable[..., Awaitable[str]]
) -> None:
    bootstrap = stack.kafka_bootstrap_servers
    topic = await kafka_topic("benchskip", partitions=1)
    tp = TopicPartition(topic, 0)
    prefix = f"benchskip-{uuid.uuid4().hex[:8]}-"
    caught, behind, reading = prefix + "caught", prefix + "behind", prefix + "reading"
    await produce(bootstrap, _records(topic, 4))
    await commit_offsets(bootstrap, caught, {tp: 4})
    await commit_offsets(bootstrap, behind, {tp: 1})  # a stopped service with a backlog of its own
    await commit_offsets(bootstrap, reading, {tp: 4})

    marks = await caught_up_groups(bootstrap, prefix)
    assert marks == {caught: {tp: 4}, behind: {}, reading: {tp: 4}}

    await produce(bootstrap, _records(topic, 6))  # the bench's records
    await commit_offsets(bootstrap, reading, {tp: 7})  # a service that ran meanwhile read some of them
    skipped, left = await skip_since(bootstrap, marks)

    assert (skipped, left) == (6, [reading])
    assert await _committed(bootstrap, caught, tp) == 10
    assert await _committed(bootstrap, behind, tp) == 1  # its backlog (and the bench's records) stay
    assert await _committed(bootstrap, reading, tp) == 7

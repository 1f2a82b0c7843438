"""Kafka helpers for tests: throwaway topics, plain producing, consuming until a condition holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engagiert.shared import topics
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.settings import aiokafka_options
from engagiert.shared.topics import dlq


async def create_test_topics(bootstrap: str, base: str, *, partitions: int = 3) -> str:
    """Create ``<base>.<random>`` and its ``.dlq``; return the topic name."""
    topic = f"{base}.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1), NewTopic(dlq(topic), 1, 1)])
    finally:
        await admin.close()
    return topic


def only_test_systems(run: str) -> str:
    """Return a registry's systems pattern that matches only systems named ``test-<run>-...``.

    A test registry with a fresh consumer group would otherwise read every connected system's
    topic on the stack from its beginning (and dead-letter the records it has no grant for).
    """
    return rf"^registry\.inbound\.(test-{run}-[a-z0-9-]+)\.v1$"


async def fresh_registry(bootstrap: str, *, group: str, run: str) -> dict[str, str]:
    """Prepare a test registry process with consumer group ``group``: return the variables that isolate it.

    Its groups start where the operators' channel and the erasure confirmations end now, it
    consumes only the connected systems named ``test-<run>-...`` (see :func:`only_test_systems`),
    and it does not purge the shared inbound topics after an erasure (only the stack's registry
    does; a test that purges points the registry at topics of its own and sets
    ``REGISTRY_PURGE_INBOUND_RECORDS=true`` again).
    """
    await skip_history(bootstrap, group, [topics.REGISTRY_INBOUND])
    await skip_history(bootstrap, f"{group}-confirmations", [topics.REGISTRY_ERASURE_CONFIRMATIONS])
    return {"REGISTRY_SYSTEMS_PATTERN": only_test_systems(run), "REGISTRY_PURGE_INBOUND_RECORDS": "false"}


async def skip_history(bootstrap: str, group_id: str, topics: Sequence[str]) -> None:
    """Commit the current end of every partition of ``topics`` for the (new, empty) group ``group_id``.

    A new group starts at the earliest offset (the platform's rule, so a fresh service reads the
    whole history). Tests on the shared topics want only the records they produce themselves: after
    this, the group starts where the topics end now, however much other tests wrote before.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t.get("partitions") or []]
    if len(partitions) < len(topics):
        raise RuntimeError(f"no partitions found for some of {list(topics)}: {described}")
    await commit_offsets(bootstrap, group_id, await partition_end_offsets(bootstrap, set(partitions)))


async def caught_up_groups(bootstrap: str, prefix: str = "engagiert-") -> dict[str, dict[TopicPartition, int]]:
    """Return, for every consumer group named ``prefix...``, the partitions it has read to their end now.

    The mark :func:`skip_since` takes: a bench or test that writes to the shared topics marks the
    local stack's own groups (``engagiert-registry``, ...) before and skips its records for them
    after, so the stack's services do not work through them (and send their e-mails) when they
    next run.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(prefix)]
        committed = {g: await admin.list_consumer_group_offsets(g) for g in groups}
    finally:
        await admin.close()
    ends = await partition_end_offsets(bootstrap, {tp for offsets in committed.values() for tp in offsets})
    return {
        group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0 and meta.offset == ends.get(tp)}
        for group, offsets in committed.items()
    }


async def skip_since(bootstrap: str, marks: dict[str, dict[TopicPartition, int]]) -> tuple[int, list[str]]:
    """Move each marked group past what was written since the mark; return (records skipped, groups left).

    Only partitions a group had read to their end at the mark and whose committed offset has not
    moved since are moved to their end now: a group that was behind keeps its backlog, and a group
    whose service ran meanwhile (it read on, or the broker refuses a commit while it has members)
    is left alone and named in the answer.
    """
    skipped, left = 0, []
    for group, marked in marks.items():
        if not marked:
            continue
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
        await admin.start()
        try:
            now = await admin.list_consumer_group_offsets(group, partitions=list(marked))
        finally:
            await admin.close()
        ends = await partition_end_offsets(bootstrap, set(marked))
        moves = {
            tp: ends[tp]
            for tp, offset in marked.items()
            if tp in now and now[tp].offset == offset and ends.get(tp, offset) > offset
        }
        if any(tp in now and now[tp].offset != offset for tp, offset in marked.items()):
            left.append(group)
        if not moves:
            continue
        try:
            await commit_offsets(bootstrap, group, moves)
            skipped += sum(end - marked[tp] for tp, end in moves.items())
        except Exception:  # the group has members now: its service reads those records itself
            left.append(group)
    return skipped, sorted(set(left))


async def commit_offsets(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` from outside it (the broker refuses while the group has members)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **aiokafka_options()
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def partition_end_offsets(bootstrap: str, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
    """Return the current end offset of each of ``partitions`` (where records produced from now on start)."""
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **aiokafka_options())
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(list(partitions)))
    finally:
        await consumer.stop()


async def produce_records(
    bootstrap: str,
    records: Sequence[OutgoingRecord | tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]],
    *,
    topic: str | None = None,
) -> None:
    """Send records with a plain aiokafka producer (no project code on the wire path)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **aiokafka_options())
    await producer.start()
    try:
        futures = []
        for rec in records:
            if isinstance(rec, OutgoingRecord):
                futures.append(
                    await producer.send(
                        topic or rec.topic,
                        rec.value,
                        key=rec.key.encode(),
                        headers=list(rec.headers.items()),
                    )
                )
            else:
                t, key, value, headers = rec
                futures.append(await producer.send(topic or t, value, key=key, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    *,
    timeout: float = 60.0,
) -> list[Any]:
    """Read ``topic`` from the beginning until ``done(records)`` is true or ``timeout`` passes."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_options(),
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(records):
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records

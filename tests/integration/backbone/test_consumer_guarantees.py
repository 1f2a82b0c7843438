"""Consumers apply every event exactly once across a SIGKILL, dead-letter poison, accept binary mode."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from engagiert.shared.contracts import MemberStatusChanged
from engagiert.shared.envelope import Envelope, make_record
from engagiert.shared.messaging.consumer import Subscription
from engagiert.shared.messaging.dlq import (
    H_ATTEMPTS,
    H_GROUP,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
)
from engagiert.shared.mongo import insert_new
from engagiert.shared.settings import faststream_security
from engagiert.shared.testing import StackEndpoints, consume_until, produce_records
from engagiert.shared.topics import REGISTRY_MEMBERS, dlq

from .conftest import start_proc, wait_for_line

pytestmark = pytest.mark.integration

AGS = "05774032"


def status_event(i: int, key: str | None = None):
    """Return a valid record about member ``key`` (default ``m<i % 50>``)."""
    return make_record(
        MemberStatusChanged(
            member_id=key or f"m{i % 50:03d}",
            municipality=AGS,
            revision=i + 1,
            status="paused",
            previous_status="active",
        ),
        source="/engagiert/test",
    )


async def wait_until(predicate, timeout: float = 60.0) -> None:
    """Poll an async predicate until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    raise AssertionError("condition not met in time")


async def test_consumer_killed_mid_stream_applies_every_event_exactly_once(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """3,000 events, the consumer SIGKILLed midway and restarted: 3,000 applied, none twice."""
    total = 3000
    topic = await kafka_topic("test.consume")
    await produce_records(stack.kafka_bootstrap_servers, [status_event(i) for i in range(total)], topic=topic)
    args = [
        "--bootstrap", stack.kafka_bootstrap_servers, "--mongodb-url", stack.mongodb_url, "--db", fresh_db.name,
        "--topic", topic, "--group", unique("grp"), "--max-records", "100", "--slow", "0.05",
    ]  # fmt: skip
    first = start_proc("consumer", *args)
    wait_for_line(first, "ready")
    await wait_until(lambda: _more_than(fresh_db, 600))
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    applied_at_kill = await fresh_db["applied"].count_documents({})
    assert applied_at_kill < total, "the kill happened mid-stream"

    second = start_proc("consumer", *args)
    try:
        wait_for_line(second, "ready")
        await wait_until(lambda: _more_than(fresh_db, total - 1), timeout=120)
        await asyncio.sleep(1.0)  # would-be duplicates have time to show
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    assert await fresh_db["applied"].count_documents({}) == total
    counts = [d["count"] async for d in fresh_db["counters"].find({}, {"count": 1})]
    assert sum(counts) == total, "no event was applied twice to the counters"


async def _more_than(db, n: int) -> bool:
    return await db["applied"].count_documents({}) > n


async def test_poison_records_go_to_the_dlq_and_the_valid_ones_behind_them_are_applied(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """Not JSON, no specversion, unknown type, bad data: each dead-lettered with a reason; valid ones applied."""
    topic = await kafka_topic("test.poison", partitions=1)
    valid = [status_event(i, key="m1") for i in range(5)]
    not_json = (
        topic,
        b"m1",
        b"\x00this is not json",
        [("content-type", b"application/cloudevents+json")],
    )
    # A valid event but for its missing specversion: the SDK would fill in "1.0"; we refuse it.
    stripped = {k: v for k, v in json.loads(status_event(99, key="m1").value).items() if k != "specversion"}
    not_ce = (topic, b"m1", json.dumps(stripped).encode(), [("content-type", b"application/cloudevents+json")])
    unknown = (topic, b"m1", json.dumps({"specversion": "1.0", "id": "u1", "source": "/x", "type": "de.engagiert.nope.v1", "data": {}}).encode(), [])  # fmt: skip
    bad_data = (topic, b"m1", valid[0].value.replace(b'"05774032"', b'"Paderborn"').replace(valid[0].id.encode(), b"bad-1"), [])  # fmt: skip
    as_tuples = [(topic, v.key.encode(), v.value, list(v.headers.items())) for v in valid]
    await produce_records(
        stack.kafka_bootstrap_servers,
        [
            as_tuples[0],
            not_json,
            as_tuples[1],
            not_ce,
            as_tuples[2],
            unknown,
            as_tuples[3],
            bad_data,
            as_tuples[4],
        ],
    )
    applied = fresh_db["applied"]

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        await insert_new(applied, [{"_id": e.id} for e in events])

    group = unique("poison")
    broker = KafkaBroker(stack.kafka_bootstrap_servers, security=faststream_security())
    sub = Subscription(topic=topic, handler=handle, group_id=group, contract_topic=REGISTRY_MEMBERS)
    sub.register(broker)
    await broker.start()
    try:
        await wait_until(lambda: _count_is(applied, 5), timeout=60)
        dead = await consume_until(stack.kafka_bootstrap_servers, dlq(topic), lambda r: len(r) >= 4, timeout=30)
    finally:
        sub.stop()
        await broker.stop()

    assert {v.id for v in valid} == {d["_id"] async for d in applied.find({})}
    assert len(dead) == 4
    reasons = []
    for rec in dead:
        headers = {k: v.decode() for k, v in rec.headers}
        assert headers[H_GROUP] == group
        assert headers[H_TOPIC] == topic
        assert headers[H_PARTITION] == "0"
        assert headers[H_ATTEMPTS] == "1"
        assert int(headers[H_OFFSET]) in {1, 3, 5, 7}
        reasons.append(headers[H_REASON])
    assert reasons == ["not-json", "not-a-cloudevent", "unknown-type", "invalid-data"]
    assert dead[0].value == not_json[2], "the dead-letter record keeps the original bytes"


async def _count_is(coll, n: int) -> bool:
    return await coll.count_documents({}) >= n


async def test_a_handler_that_keeps_failing_dead_letters_after_max_attempts(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """An event whose handling fails every time goes to the DLQ after max attempts; the rest apply."""
    topic = await kafka_topic("test.retry", partitions=1)
    records = [status_event(i, key=f"m{i}") for i in range(4)]
    await produce_records(stack.kafka_bootstrap_servers, records, topic=topic)
    applied = fresh_db["applied"]
    poisoned = records[2].id
    attempts: dict[str, int] = {}

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        for e in events:
            attempts[e.id] = attempts.get(e.id, 0) + 1
        if any(e.id == poisoned for e in events):
            raise ValueError("cannot apply this one")
        await insert_new(applied, [{"_id": e.id} for e in events])

    broker = KafkaBroker(stack.kafka_bootstrap_servers, security=faststream_security())
    sub = Subscription(
        topic=topic, handler=handle, group_id=unique("retry"), max_attempts=3, backoff_seconds=0.05,
        contract_topic=REGISTRY_MEMBERS,
    )  # fmt: skip
    sub.register(broker)
    await broker.start()
    try:
        await wait_until(lambda: _count_is(applied, 3), timeout=60)
        dead = await consume_until(stack.kafka_bootstrap_servers, dlq(topic), lambda r: len(r) >= 1, timeout=30)
    finally:
        sub.stop()
        await broker.stop()
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers[H_REASON] == "handler-error"
    assert headers[H_ATTEMPTS] == "3"
    assert "cannot apply this one" in headers["dlq-error"]
    assert attempts[poisoned] == 4, "one attempt in the batch, three alone"


async def test_binary_mode_cloudevent_from_a_foreign_producer_is_accepted(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """A binary-mode CloudEvent sent with plain aiokafka (ce_* headers, no project code) is applied."""
    topic = await kafka_topic("test.binary", partitions=1)
    data = {
        "member_id": "x1",
        "municipality": AGS,
        "revision": 2,
        "status": "left",
        "previous_status": "active",
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"foreign-0001"),
        ("ce_source", b"urn:vereinsverwaltung:paderborn"),
        ("ce_type", MemberStatusChanged.TYPE.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("ce_municipality", AGS.encode()),
        ("content-type", b"application/json"),
    ]
    await produce_records(stack.kafka_bootstrap_servers, [(topic, b"x1", json.dumps(data).encode(), headers)])
    seen: list[Envelope[Any]] = []

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        seen.extend(events)

    broker = KafkaBroker(stack.kafka_bootstrap_servers, security=faststream_security())
    sub = Subscription(topic=topic, handler=handle, group_id=unique("binary"), contract_topic=REGISTRY_MEMBERS)
    sub.register(broker)
    await broker.start()
    try:
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        sub.stop()
        await broker.stop()
    assert len(seen) == 1
    assert seen[0].id == "foreign-0001"
    assert seen[0].source == "urn:vereinsverwaltung:paderborn"
    assert seen[0].municipality == AGS
    assert isinstance(seen[0].data, MemberStatusChanged)
    assert seen[0].data.status == "left"

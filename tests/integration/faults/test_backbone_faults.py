"""Fault suite of the backbone: the store away for 10 s, a broker restart and a poison burst under load.

Each test ends with a count: every event applied, none twice. These restart the stack's own
processes, so they run only where the stack's ports are served by a process on this machine.
"""

from __future__ import annotations

import asyncio
import json
import signal
import tempfile
from pathlib import Path

import pytest

from engagiert.shared.testing import StackEndpoints, consume_until, produce_records
from engagiert.shared.topics import dlq
from tests.integration.backbone.conftest import start_proc, wait_for_line
from tests.integration.backbone.test_consumer_guarantees import status_event, wait_until

from .processes import LocalServer, port_of

pytestmark = [pytest.mark.integration, pytest.mark.faults]

TOTAL = 2000


def _server(url: str) -> LocalServer:
    server = LocalServer.on_port(port_of(url))
    if server is None:
        pytest.skip(f"no local process serves {url}: cannot inject the fault here")
    return server


async def _applied(db) -> int:
    return await db["applied"].count_documents({})


async def _run_with_fault(stack: StackEndpoints, kafka_topic, fresh_db, unique, fault) -> None:
    topic = await kafka_topic("test.fault")
    await produce_records(stack.kafka_bootstrap_servers, [status_event(i) for i in range(TOTAL)], topic=topic)
    args = [
        "--bootstrap", stack.kafka_bootstrap_servers, "--mongodb-url", stack.mongodb_url, "--db", fresh_db.name,
        "--topic", topic, "--group", unique("fault"), "--max-records", "100", "--slow", "0.05",
    ]  # fmt: skip
    consumer = start_proc("consumer", *args)
    try:
        wait_for_line(consumer, "ready")
        await wait_until(lambda: _more(fresh_db, 300), timeout=120)
        await fault()
        await wait_until(lambda: _more(fresh_db, TOTAL - 1), timeout=240)
        await asyncio.sleep(1.0)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=60)
    assert await _applied(fresh_db) == TOTAL, "every event applied"
    counts = [d["count"] async for d in fresh_db["counters"].find({}, {"count": 1})]
    assert sum(counts) == TOTAL, "no event applied twice"


async def _more(db, n: int) -> bool:
    try:
        return await _applied(db) > n
    except Exception:  # the store may be away right now
        return False


async def test_store_away_for_ten_seconds_loses_nothing_and_applies_nothing_twice(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """The MongoDB-wire store stops for 10 s mid-stream: the consumer waits, then applies the rest once."""
    store = _server(stack.mongodb_url)

    async def fault() -> None:
        store.stop()
        await asyncio.sleep(10)
        store.start(Path(tempfile.gettempdir()) / "engagiert-fault-store.log")
        await asyncio.sleep(2)

    await _run_with_fault(stack, kafka_topic, fresh_db, unique, fault)


async def test_broker_restart_under_load_loses_nothing_and_applies_nothing_twice(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """Kafka restarts mid-stream: the consumer reconnects, re-reads what was not committed, applies once."""
    broker = _server(stack.kafka_bootstrap_servers)

    async def fault() -> None:
        broker.stop()
        broker.start(Path(tempfile.gettempdir()) / "engagiert-fault-kafka.log")
        await wait_until(_broker_answers(stack), timeout=120)

    await _run_with_fault(stack, kafka_topic, fresh_db, unique, fault)


def _broker_answers(stack: StackEndpoints):
    async def check() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        from engagiert.shared.settings import aiokafka_options

        admin = AIOKafkaAdminClient(
            bootstrap_servers=stack.kafka_bootstrap_servers, request_timeout_ms=3000, **aiokafka_options()
        )
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    return check


async def test_a_burst_of_poison_is_dead_lettered_and_the_valid_events_all_apply(
    stack: StackEndpoints, kafka_topic, fresh_db, unique
) -> None:
    """500 poison records between 500 valid ones: 500 in the DLQ with reasons, 500 applied once."""
    topic = await kafka_topic("test.burst")
    records = []
    for i in range(500):
        valid = status_event(i)
        records.append((topic, valid.key.encode(), valid.value, list(valid.headers.items())))
        poison = [b"\x00garbage", json.dumps({"no": "cloudevent"}).encode()][i % 2]
        records.append((topic, valid.key.encode(), poison, []))
    await produce_records(stack.kafka_bootstrap_servers, records)
    args = [
        "--bootstrap", stack.kafka_bootstrap_servers, "--mongodb-url", stack.mongodb_url, "--db", fresh_db.name,
        "--topic", topic, "--group", unique("burst"),
    ]  # fmt: skip
    consumer = start_proc("consumer", *args)
    try:
        wait_for_line(consumer, "ready")
        await wait_until(lambda: _more(fresh_db, 499), timeout=120)
        dead = await consume_until(stack.kafka_bootstrap_servers, dlq(topic), lambda r: len(r) >= 500, timeout=60)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=60)
    assert await _applied(fresh_db) == 500
    assert len(dead) == 500
    reasons = {dict(r.headers)["dlq-reason"].decode() for r in dead}
    assert reasons == {"not-json", "not-a-cloudevent"}

"""Measures the shared outbox relay: documents with pending entries in the store, published to Kafka and marked.

The documents look like the services' aggregates (an invitation carries three records in its
outbox: the fact and two notification requests); the records are real CloudEvents of a few
hundred bytes. The relay runs with the services' broker settings (acks=all, idempotence,
linger 5 ms). Its records/s are compared with plain aiokafka produce measured in the same run, and
with the store's part alone (the same documents read and cleared with the relay's queries, no broker).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from faststream.kafka import KafkaBroker

from engagiert.shared.contracts import MemberStatusChanged
from engagiert.shared.envelope import make_record
from engagiert.shared.messaging.outbox import CLEAR_CHUNK, OUTBOX, PENDING, OutboxRelay, outbox_fields
from engagiert.shared.messaging.publisher import RecordPublisher
from engagiert.shared.mongo import create_client
from engagiert.shared.settings import faststream_security
from engagiert.shared.testing import StackEndpoints, create_test_topics

PER_DOC = 3


def _aggregates(docs: int, per_doc: int, topic: str) -> list[dict[str, Any]]:
    """Return ``docs`` aggregates, each with ``per_doc`` pending records for ``topic`` in its outbox."""
    rows = []
    for i in range(docs):
        records = [
            dataclasses.replace(
                make_record(
                    MemberStatusChanged(
                        member_id=f"m{i:06d}",
                        municipality="05774032",
                        revision=j + 1,
                        status="paused",
                        previous_status="active",
                    ),
                    source="/engagiert/bench",
                ),
                topic=topic,
            )
            for j in range(per_doc)
        ]
        rows.append({"_id": f"a{i:06d}", "status": "open", **outbox_fields(records)})
    return rows


async def _stored(coll: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        await coll.insert_many(rows[start : start + 1000], ordered=False)


async def outbox_relay(stack: StackEndpoints, docs: int, *, per_doc: int = PER_DOC) -> dict[str, Any]:
    """Write ``docs`` aggregates with ``per_doc`` pending records each; time the relay publishing and marking them.

    Then the store's part alone, as a ceiling of its own: the same documents read and cleared
    with the relay's queries (its chunks, its guarded update), serially and without a broker.
    """
    topic = await create_test_topics(stack.kafka_bootstrap_servers, "bench.relay", partitions=1)
    client = create_client(stack.mongodb_url, app_name="engagiert-bench")
    db = client[f"bench_relay_{uuid.uuid4().hex[:8]}"]
    coll = db["aggregates"]
    broker = KafkaBroker(
        stack.kafka_bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5, security=faststream_security()
    )
    try:
        await _stored(coll, _aggregates(docs, per_doc, topic))
        await broker.connect()
        relay = OutboxRelay(collections=[coll], publisher=RecordPublisher(broker))
        await relay.ensure_indexes()
        started = time.perf_counter()
        published = await relay.drain()
        elapsed = time.perf_counter() - started
        left = await coll.count_documents({PENDING: True})
        store = db["store_only"]
        await _stored(store, _aggregates(docs, per_doc, topic))
        store_s, store_records = await _read_and_clear(store)
    finally:
        await broker.stop()
        await client.drop_database(db.name)
        await client.close()
    return {
        "documents": docs,
        "records_published": published,
        "still_pending": left,
        "seconds": round(elapsed, 2),
        "records_per_s": round(published / elapsed, 1),
        "store_read_and_clear_seconds": round(store_s, 2),
        "store_read_and_clear_records_per_s": round(store_records / store_s, 1),
    }


async def _read_and_clear(coll: Any) -> tuple[float, int]:
    """Read every pending document and clear it with the relay's own guarded update, publishing nothing; (seconds, records)."""
    relay = OutboxRelay(collections=[coll], publisher=RecordPublisher(KafkaBroker()))  # its publisher is never used
    await relay.ensure_indexes()
    records = 0
    started = time.perf_counter()
    while True:
        docs = await coll.find({PENDING: True}, {OUTBOX: 1}, batch_size=CLEAR_CHUNK).limit(500).to_list(None)
        if not docs:
            return time.perf_counter() - started, records
        for start in range(0, len(docs), CLEAR_CHUNK):
            await relay._clear_unchanged(coll, docs[start : start + CLEAR_CHUNK])  # the relay's own query
        records += sum(len(d[OUTBOX]) for d in docs)

"""Measures inbound hours-report throughput against plain aiokafka consume plus bulk insert, in one run.

Run it on the real stack: ``python -m engagiert.registry.bench [size [history]]`` (history: earlier
entries per member before a second measurement).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from engagiert.registry.config import RegistrySettings
from engagiert.registry.main import create_app
from engagiert.shared.contracts import ReportHours
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.mongo import create_client, insert_new
from engagiert.shared.settings import aiokafka_options
from engagiert.shared.testing import (
    app_client,
    auth_header,
    create_test_topics,
    only_test_systems,
    produce_records,
    resolve_stack,
)
from engagiert.shared.testing.stack import StackEndpoints

AGS = "05774032"
MEMBERS = 50


def _reports(ids: list[str], count: int, *, first: date, span: int = 300) -> list[OutgoingRecord]:
    """Return ``count`` hours reports over the members ``ids`` in turn, dated over ``span`` days from ``first``."""
    return [
        make_record(
            ReportHours(
                municipality=AGS,
                member_id=ids[i % len(ids)],
                hours=1 + i % 4,
                date_from=first + timedelta(days=i % span),
            ),
            source="urn:bench",
        )
        for i in range(count)
    ]


async def _committed(stack: StackEndpoints, group: str, topic: str) -> int:
    """Return how many records of ``topic`` the consumer group ``group`` has committed (its effects are durable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers, **aiokafka_options())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


async def _applied(stack: StackEndpoints, group: str, topic: str, records: list[OutgoingRecord], total: int) -> float:
    """Produce ``records``; return the seconds until the registry's group has committed ``total`` records.

    The consumer commits only once a batch's effects are durable, so this is the time until every
    report is applied. (Polling the store's count instead made FerretDB decode the whole hours
    collection on every poll: 15 s per count at 20,000 entries on a busy machine.)
    """
    started = time.perf_counter()
    await produce_records(stack.kafka_bootstrap_servers, records, topic=topic)
    while await _committed(stack, group, topic) < total:  # noqa: ASYNC110 - polling the group is the measurement
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


async def run(stack: StackEndpoints, size: int = 10_000, history: int = 0) -> dict[str, Any]:
    """Return events/s of the registry's inbound path and of a plain consume + bulk insert, and their ratio.

    With ``history``, each member then gets that many earlier entries (spread over the four years
    before, not measured) and ``size`` more reports are measured again: ``history_ratio``.
    """
    run_id = uuid.uuid4().hex[:8]
    topic = await create_test_topics(stack.kafka_bootstrap_servers, "bench.registry-inbound")
    db_name = f"bench_registry_{run_id}"
    settings = RegistrySettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=db_name,
        consumer_group=f"bench-registry-{run_id}",
        inbound_topic=topic,
        confirmations_topic=await create_test_topics(stack.kafka_bootstrap_servers, "bench.registry-confirmations"),
        systems_pattern=only_test_systems(run_id),
    )
    client = create_client(stack.mongodb_url, app_name="engagiert-bench")
    db = client[db_name]
    try:
        app = create_app(settings)
        async with app_client(app) as http:
            admin = auth_header(["*"], "network-admin")
            await http.post(
                "/v1/municipalities", json={"ags": AGS, "name": "Paderborn", "kind": "Stadt"}, headers=admin
            )
            staff = auth_header([AGS], "staff")
            ids = []
            for i in range(MEMBERS):
                body = {"given_name": f"Bench{i}", "family_name": "Member", "contact": {"email": f"b{i}@example.org"}}
                ids.append(
                    (await http.post(f"/v1/municipalities/{AGS}/members", json=body, headers=staff)).json()["member_id"]
                )
            service_seconds = await _applied(
                stack, settings.group_id, topic, _reports(ids, size, first=date(2026, 1, 1)), size
            )
            history_seconds = None
            if history:
                earlier = _reports(ids, history * MEMBERS, first=date(2022, 1, 1), span=1400)
                for start in range(0, len(earlier), 10_000):
                    chunk = earlier[start : start + 10_000]
                    await _applied(stack, settings.group_id, topic, chunk, size + start + len(chunk))
                total = size + len(earlier) + size
                history_seconds = await _applied(
                    stack, settings.group_id, topic, _reports(ids, size, first=date(2026, 2, 1)), total
                )

        # The baseline: the same records, consumed by plain aiokafka in batches as large as the
        # registry's and bulk-inserted as they come.
        scratch = db["scratch"]
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=stack.kafka_bootstrap_servers,
            group_id=f"bench-plain-{run_id}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **aiokafka_options(),
        )
        started = time.perf_counter()
        await consumer.start()
        done = 0
        try:
            while done < size:
                batch = await consumer.getmany(timeout_ms=500, max_records=settings.inbound_max_records)
                docs = [
                    {"_id": f"{r.topic}:{r.partition}:{r.offset}", "value": r.value}
                    for rs in batch.values()
                    for r in rs
                ]
                if docs:
                    await insert_new(scratch, docs)
                    await consumer.commit()
                    done += len(docs)
        finally:
            await consumer.stop()
        plain_seconds = time.perf_counter() - started
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(db_name)
        await client.close()
    service_rate = size / service_seconds
    plain_rate = size / plain_seconds
    figures: dict[str, Any] = {
        "events": size,
        "registry_inbound_events_per_s": round(service_rate, 1),
        "plain_consume_bulk_insert_events_per_s": round(plain_rate, 1),
        "ratio": round(service_rate / plain_rate, 3),
    }
    if history_seconds is not None:
        figures.update(
            {
                "history_entries_per_member": history,
                "with_history_events_per_s": round(size / history_seconds, 1),
                "history_ratio": round(size / history_seconds / plain_rate, 3),
            }
        )
    return figures


def main(argv: list[str] | None = None) -> None:
    """Print the figures of one run."""
    args = sys.argv[1:] if argv is None else argv
    size = int(args[0]) if args else 10_000
    history = int(args[1]) if len(args) > 1 else 0
    with contextlib.ExitStack() as exits:
        stack = resolve_stack(exits)
        result = asyncio.run(run(stack, size, history))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

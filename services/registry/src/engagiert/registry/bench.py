"""Measures inbound hours-report throughput against plain aiokafka consume plus bulk insert, in one run.

Run it on the real stack: ``python -m engagiert.registry.bench [size]``.
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

from engagiert.registry.config import RegistrySettings
from engagiert.registry.main import create_app
from engagiert.shared.contracts import ReportHours
from engagiert.shared.envelope import make_record
from engagiert.shared.mongo import create_client, insert_new
from engagiert.shared.testing import app_client, auth_header, create_test_topics, produce_records, resolve_stack
from engagiert.shared.testing.stack import StackEndpoints

AGS = "05774032"
MEMBERS = 50


async def run(stack: StackEndpoints, size: int = 10_000) -> dict[str, Any]:
    """Return events/s of the registry's inbound path and of a plain consume + bulk insert, and their ratio."""
    run_id = uuid.uuid4().hex[:8]
    topic = await create_test_topics(stack.kafka_bootstrap_servers, "bench.registry-inbound")
    db_name = f"bench_registry_{run_id}"
    settings = RegistrySettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=db_name,
        consumer_group=f"bench-registry-{run_id}",
        inbound_topic=topic,
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
            records = [
                make_record(
                    ReportHours(
                        municipality=AGS,
                        member_id=ids[i % MEMBERS],
                        hours=1 + i % 4,
                        date_from=date(2026, 1, 1) + timedelta(days=i % 300),
                    ),
                    source="urn:bench",
                )
                for i in range(size)
            ]
            started = time.perf_counter()
            await produce_records(stack.kafka_bootstrap_servers, records, topic=topic)
            while await db["hours"].count_documents({}) < size:  # noqa: ASYNC110 - polling the store is the measurement
                await asyncio.sleep(0.2)
            service_seconds = time.perf_counter() - started

        # The baseline: the same records, consumed by plain aiokafka and bulk-inserted as they come.
        scratch = db["scratch"]
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=stack.kafka_bootstrap_servers,
            group_id=f"bench-plain-{run_id}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        started = time.perf_counter()
        await consumer.start()
        done = 0
        try:
            while done < size:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
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
    return {
        "events": size,
        "registry_inbound_events_per_s": round(service_rate, 1),
        "plain_consume_bulk_insert_events_per_s": round(plain_rate, 1),
        "ratio": round(service_rate / plain_rate, 3),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the figures of one run."""
    args = sys.argv[1:] if argv is None else argv
    size = int(args[0]) if args else 10_000
    with contextlib.ExitStack() as exits:
        stack = resolve_stack(exits)
        result = asyncio.run(run(stack, size))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

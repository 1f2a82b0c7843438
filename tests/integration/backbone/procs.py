"""Processes the backbone tests start and kill: a counting consumer and an outbox writer.

Run as ``python -m tests.integration.backbone.procs consumer|writer ...`` from the repo root.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from engagiert.shared.contracts import MemberStatusChanged
from engagiert.shared.envelope import Envelope, make_record
from engagiert.shared.messaging.consumer import Subscription
from engagiert.shared.messaging.idempotency import apply_guarded
from engagiert.shared.messaging.outbox import OutboxRelay, outbox_fields
from engagiert.shared.messaging.publisher import RecordPublisher
from engagiert.shared.mongo import create_client, insert_new
from engagiert.shared.settings import faststream_security
from engagiert.shared.topics import REGISTRY_MEMBERS


async def run_consumer(args: argparse.Namespace) -> None:
    """Consume ``args.topic`` and count every event per key, effectively once."""
    client = create_client(args.mongodb_url)
    db = client[args.db]
    applied = db["applied"]
    counters = db["counters"]

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        # Two effects per event: a log entry keyed by the event id (idempotent insert) and a
        # counter increment guarded by the event id. Duplicates would show in either.
        await insert_new(applied, [{"_id": e.id, "key": e.key} for e in events])
        await apply_guarded(counters, [(e.key, {"$inc": {"count": 1}}, e.id) for e in events])
        if args.slow:
            await asyncio.sleep(args.slow)

    broker = KafkaBroker(args.bootstrap, graceful_timeout=5, security=faststream_security())
    sub = Subscription(
        topic=args.topic,
        handler=handle,
        group_id=args.group,
        max_records=args.max_records,
        contract_topic=REGISTRY_MEMBERS,
    )
    sub.register(broker)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    sub.stop()
    await broker.stop()
    await client.close()


async def run_writer(args: argparse.Namespace) -> None:
    """Write state changes with their events in the outbox; optionally die before publishing."""
    client = create_client(args.mongodb_url)
    coll = client[args.db]["members"]
    docs: list[dict[str, Any]] = []
    for i in range(args.count):
        member_id = f"m{i:05d}"
        record = make_record(
            MemberStatusChanged(
                member_id=member_id,
                municipality="05774032",
                revision=1,
                status="paused",
                previous_status="active",
            ),
            source="/engagiert/test",
        )
        record = dataclasses.replace(record, topic=args.topic)
        docs.append({"_id": member_id, "status": "paused", **outbox_fields([record])})
    # Each document is one member's state with its event, inserted in bulk (3,000 upserts one by
    # one took over a minute on a busy machine, longer than the tests wait).
    await insert_new(coll, docs)
    print("written", flush=True)
    if args.die_before_publish:
        os.kill(os.getpid(), signal.SIGKILL)
    broker = KafkaBroker(args.bootstrap, security=faststream_security())
    await broker.connect()
    relay = OutboxRelay(collections=[coll], publisher=RecordPublisher(broker), batch_size=args.batch)
    await relay.ensure_indexes()
    published = await relay.drain()
    print(f"published {published}", flush=True)
    await broker.stop()
    await client.close()


def main() -> None:
    """Parse arguments and run one of the processes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["consumer", "writer"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--mongodb-url", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--topic", default="")
    parser.add_argument("--group", default="")
    parser.add_argument("--max-records", type=int, default=200)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--die-before-publish", action="store_true")
    args = parser.parse_args()
    asyncio.run(run_consumer(args) if args.role == "consumer" else run_writer(args))


if __name__ == "__main__":
    main()

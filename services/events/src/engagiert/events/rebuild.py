"""Rebuilds the member read model by replaying the registry's topics from the beginning.

Run with the service's environment (``EVENTS_*``/``MONGODB_URL``/``KAFKA_BOOTSTRAP_SERVERS``)::

    python -m engagiert.events.rebuild            # clear the read model, replay, print the counts
    python -m engagiert.events.rebuild --keep     # replay over what is there (no clearing)

The replay reads every partition of ``registry.members.v1`` and ``registry.engagement.v1`` from
its earliest offset up to the end it had when the run began, without a consumer group (nothing
is committed; the running service's group is left alone), and applies the records with the
service's own idempotent use case. It may run while the service runs: revision guards and
hours entry ids make the order of the two writers irrelevant. Erasures in the history erase
again (their confirmations carry the same CloudEvent ids, so the registry sees no new one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engagiert.events import repository
from engagiert.events.config import EventsSettings
from engagiert.events.repository import HOURS_APPLIED, MEMBERS, Repository
from engagiert.events.services import EventsService
from engagiert.shared import topics
from engagiert.shared.envelope import Envelope, EnvelopeError, parse_record
from engagiert.shared.logging import configure_logging, get_logger
from engagiert.shared.mongo import create_client

log = get_logger(__name__)


async def _partitions(bootstrap: str, security: dict[str, Any], names: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    found = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t.get("partitions") or []]
    missing = set(names) - {tp.topic for tp in found}
    if missing:
        raise RuntimeError(f"no such topics: {sorted(missing)}")
    return found


async def rebuild(
    settings: EventsSettings,
    *,
    clear: bool = True,
    members_topic: str = topics.REGISTRY_MEMBERS,
    engagement_topic: str = topics.REGISTRY_ENGAGEMENT,
) -> dict[str, Any]:
    """Replay both topics from the beginning into the read model; return what was read, applied and kept."""
    started = time.perf_counter()
    contract = {members_topic: topics.REGISTRY_MEMBERS, engagement_topic: topics.REGISTRY_ENGAGEMENT}
    security = settings.kafka_client_options()
    bootstrap = settings.kafka_bootstrap_servers
    client = create_client(settings.mongodb_url, app_name="engagiert-events-rebuild")
    db = client[settings.database_name]
    read: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    applied = 0
    try:
        await repository.ensure_indexes(db)
        read_model = EventsService(Repository(db), settings).member_read_model
        partitions = await _partitions(bootstrap, security, list(contract))
        cleared = (await db[MEMBERS].delete_many({})).deleted_count if clear else 0
        if clear:
            await db[HOURS_APPLIED].delete_many({})  # the records say what the cleared members counted
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="engagiert-events-rebuild",
            max_poll_records=settings.consumer_max_records,
            **security,
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            firsts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.seek_to_beginning(*partitions)
            open_parts = {tp for tp in partitions if firsts[tp] < ends[tp]}
            while open_parts:
                batch = await consumer.getmany(*open_parts, timeout_ms=1000)
                events: list[Envelope[Any]] = []
                for tp, records in batch.items():
                    for rec in records:
                        if rec.offset >= ends[tp]:
                            continue
                        read[tp.topic] += 1
                        try:
                            events.append(
                                parse_record(
                                    value=rec.value, headers=rec.headers, key=rec.key, expected_topic=contract[tp.topic]
                                )
                            )
                        except EnvelopeError as exc:
                            skipped[exc.reason] += 1  # the live consumer dead-lettered these already
                if events:
                    await read_model.apply_member_events(events)
                    applied += len(events)
                for tp in list(open_parts):
                    if await consumer.position(tp) >= ends[tp]:
                        open_parts.discard(tp)
        finally:
            await consumer.stop()
        members = await db[MEMBERS].count_documents({})
        erased = await db[MEMBERS].count_documents({"erased": True})
    finally:
        await client.close()
    result = {
        "database": settings.database_name,
        "cleared": cleared,
        "records_read": dict(read),
        "events_applied": applied,
        "records_skipped": dict(skipped),
        "members": members,
        "erased_members": erased,
        # A partition whose first offset is not 0 lost old records (retention): the rebuild lacks them.
        "truncated_partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in partitions if firsts[tp] > 0),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("read_model_rebuilt", **{k: v for k, v in result.items() if k != "database"})
    return result


def main(argv: list[str] | None = None) -> int:
    """Rebuild the read model and print the counts as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.events.rebuild", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="replay over the read model instead of clearing it")
    parser.add_argument("--members-topic", default=topics.REGISTRY_MEMBERS, help=argparse.SUPPRESS)
    parser.add_argument("--engagement-topic", default=topics.REGISTRY_ENGAGEMENT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = EventsSettings()
    configure_logging(level=settings.log_level, service=settings.service_name)
    result = asyncio.run(
        rebuild(
            settings,
            clear=not args.keep,
            members_topic=args.members_topic,
            engagement_topic=args.engagement_topic,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

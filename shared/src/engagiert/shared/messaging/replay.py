"""Replays topics from their earliest offsets into a handler: what the read models' rebuild commands share.

The replay reads every partition of the given topics from its earliest offset up to the end it
had when the run began, without a consumer group (nothing is committed; the running service's
group is left alone), parses each record as the live consumer does and hands the valid events to
``apply`` in batches. Records the live consumer dead-lettered (not a CloudEvent, unknown type,
data breaking the contract) are counted by reason and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engagiert.shared.envelope import Envelope, EnvelopeError, parse_record


@dataclass
class Replayed:
    """What a replay read, applied and skipped."""

    read: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    applied: int = 0
    truncated: list[str] = field(default_factory=list)
    """Partitions whose first offset is not 0: retention removed old records the replay lacks."""


async def partitions_of(bootstrap: str, security: dict[str, Any], names: Sequence[str]) -> list[TopicPartition]:
    """Return every partition of ``names``; RuntimeError when a topic does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    found = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t.get("partitions") or []]
    missing = set(names) - {tp.topic for tp in found}
    if missing:
        raise RuntimeError(f"no such topics: {sorted(missing)}")
    return found


async def replay(
    *,
    bootstrap: str,
    security: dict[str, Any],
    contract: dict[str, str],
    apply: Callable[[list[Envelope[Any]]], Awaitable[None]],
    max_records: int,
    client_id: str,
) -> Replayed:
    """Replay the topics of ``contract`` (topic -> the topic its contracts name) into ``apply``."""
    partitions = await partitions_of(bootstrap, security, list(contract))
    done = Replayed()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=client_id,
        max_poll_records=max_records,
        **security,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            # An explicit offset: after seek_to_beginning, aiokafka 0.14 sometimes moved the position to
            # the end without returning the records (1 run in 2 on a busy machine read nothing).
            consumer.seek(tp, firsts[tp])
        done.truncated = sorted(f"{tp.topic}-{tp.partition}" for tp in partitions if firsts[tp] > 0)
        open_parts = {tp for tp in partitions if firsts[tp] < ends[tp]}
        while open_parts:
            batch = await consumer.getmany(*open_parts, timeout_ms=1000)
            events: list[Envelope[Any]] = []
            for tp, records in batch.items():
                for rec in records:
                    if rec.offset >= ends[tp]:
                        continue
                    done.read[tp.topic] += 1
                    try:
                        events.append(
                            parse_record(
                                value=rec.value, headers=rec.headers, key=rec.key, expected_topic=contract[tp.topic]
                            )
                        )
                    except EnvelopeError as exc:
                        done.skipped[exc.reason] += 1  # the live consumer dead-lettered these already
            if events:
                await apply(events)
                done.applied += len(events)
            for tp in list(open_parts):
                if await consumer.position(tp) >= ends[tp]:
                    open_parts.discard(tp)
    finally:
        await consumer.stop()
    return done

"""Lists dead-letter records and re-drives chosen ones to their origin topic.

``python -m engagiert.shared.deadletters list [--topic T] [--reason R] [--limit N] [--json]``
prints one line per dead-letter record: where it sits, why it failed, where it came from and
the CloudEvent's type and id. It never prints the record's value (it may hold personal data).

``python -m engagiert.shared.deadletters redrive --topic T.dlq (--offset O [--offset O2 ...] |
--all-reason R) [--partition P] [--group G] [--dry-run]`` sends the chosen records again to their
origin topic: the original value, key and headers, without the ``dlq-*`` headers. Consumers are
idempotent by CloudEvent id, so a record that some group already applied is skipped there.

Connection settings are the services' own: ``KAFKA_BOOTSTRAP_SERVERS`` and the ``KAFKA_*``
SASL/TLS variables (see ``engagiert.shared.settings.aiokafka_options``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from engagiert.shared.messaging import dlq as h
from engagiert.shared.settings import aiokafka_options
from engagiert.shared.topics import ALL_TOPICS, DLQ_SUFFIX, dlq


@dataclass(frozen=True)
class DeadLetter:
    """What an operator may see of one dead-letter record (no value, so no personal data)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    error: str
    attempts: str
    group: str
    origin_topic: str
    origin_partition: str
    origin_offset: str
    failed_at: str
    ce_type: str
    ce_id: str


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str:
    for k, v in headers:
        if k == name:
            return v.decode("utf-8", errors="replace")
    return ""


def _cloudevent_type_and_id(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> tuple[str, str]:
    """Return the CloudEvent's type and id from binary-mode headers or the structured JSON, else ''."""
    if _header(headers, "ce_type"):
        return _header(headers, "ce_type"), _header(headers, "ce_id")
    try:
        doc = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    return str(doc.get("type", "")), str(doc.get("id", ""))


def describe(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    """Return the operator's view of a dead-letter record."""
    headers = list(record.headers or ())
    ce_type, ce_id = _cloudevent_type_and_id(record.value, headers)
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", errors="replace") if record.key is not None else None,
        reason=_header(headers, h.H_REASON),
        error=_header(headers, h.H_ERROR),
        attempts=_header(headers, h.H_ATTEMPTS),
        group=_header(headers, h.H_GROUP),
        origin_topic=_header(headers, h.H_TOPIC) or record.topic.removesuffix(DLQ_SUFFIX),
        origin_partition=_header(headers, h.H_PARTITION),
        origin_offset=_header(headers, h.H_OFFSET),
        failed_at=_header(headers, h.H_FAILED_AT),
        ce_type=ce_type,
        ce_id=ce_id,
    )


def dlq_topic(topic: str) -> str:
    """Return ``topic`` if it is a dead-letter topic, else its dead-letter topic."""
    return topic if topic.endswith(DLQ_SUFFIX) else dlq(topic)


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Return the partitions of ``topic``; exit with a message if it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="engagiert-deadletters", **aiokafka_options())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise SystemExit(f"topic {topic!r} does not exist (error code {described['error_code']})")
    return sorted(p["partition"] for p in described["partitions"])


async def read_dead_letters(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Return every record of ``topic`` (all partitions) up to the end offsets seen at the start."""
    tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **aiokafka_options(),
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=1000)
            for tp, recs in batch.items():
                records.extend(r for r in recs if r.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def select(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    *,
    offsets: Sequence[int] = (),
    partition: int = 0,
    reason: str | None = None,
    group: str | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Return the records at ``offsets`` of ``partition``, or those with ``reason`` (and ``group``)."""

    def wanted(rec: ConsumerRecord[bytes, bytes]) -> bool:
        headers = list(rec.headers or ())
        if group is not None and _header(headers, h.H_GROUP) != group:
            return False
        if offsets:
            return rec.partition == partition and rec.offset in offsets
        return reason is not None and _header(headers, h.H_REASON) == reason

    return [rec for rec in records if wanted(rec)]


async def redrive(bootstrap: str, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[tuple[DeadLetter, int, int]]:
    """Send each record to its origin topic without the ``dlq-*`` headers; return (record, partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **aiokafka_options())
    await producer.start()
    sent: list[tuple[DeadLetter, int, int]] = []
    try:
        for rec in records:
            letter = describe(rec)
            headers = [(k, v) for k, v in (rec.headers or ()) if k not in h.DLQ_HEADERS]
            meta = await producer.send_and_wait(letter.origin_topic, rec.value, key=rec.key, headers=headers)
            sent.append((letter, meta.partition, meta.offset))
    finally:
        await producer.stop()
    return sent


def _out(text: str, *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(text + "\n")


def _line(letter: DeadLetter) -> str:
    return (
        f"{letter.topic}[{letter.partition}]@{letter.offset} reason={letter.reason or '-'} "
        f"attempts={letter.attempts or '-'} group={letter.group or '-'} "
        f"origin={letter.origin_topic}[{letter.origin_partition or '?'}]@{letter.origin_offset or '?'} "
        f"failed_at={letter.failed_at or '-'} key={letter.key or '-'} "
        f"type={letter.ce_type or '-'} id={letter.ce_id or '-'} error={letter.error!r}"
    )


async def _list(args: argparse.Namespace) -> int:
    topics = [dlq_topic(args.topic)] if args.topic else [dlq(t) for t in ALL_TOPICS]
    for topic in topics:
        records = await read_dead_letters(args.bootstrap_servers, topic)
        letters = [describe(r) for r in records]
        if args.reason:
            letters = [x for x in letters if x.reason == args.reason]
        shown = letters[: args.limit]
        for letter in shown:
            _out(json.dumps(asdict(letter)) if args.json else _line(letter))
        if not args.json:
            _out(f"# {topic}: {len(letters)} record(s), {len(shown)} shown", err=True)
    return 0


async def _redrive(args: argparse.Namespace) -> int:
    topic = dlq_topic(args.topic)
    records = await read_dead_letters(args.bootstrap_servers, topic)
    chosen = select(
        records, offsets=args.offset or (), partition=args.partition, reason=args.all_reason, group=args.group
    )
    missing = sorted(set(args.offset or ()) - {r.offset for r in chosen})
    if missing:
        _out(f"# no record at offset(s) {missing} of {topic}[{args.partition}]: nothing sent", err=True)
        return 2
    if args.dry_run:
        for rec in chosen:
            _out("would redrive " + _line(describe(rec)))
        _out(f"# dry run: {len(chosen)} record(s) selected", err=True)
        return 0
    for letter, partition, offset in await redrive(args.bootstrap_servers, chosen):
        origin = f"{letter.origin_topic}[{partition}]@{offset}"
        _out(f"redriven {letter.topic}[{letter.partition}]@{letter.offset} -> {origin}")
    _out(f"# {len(chosen)} record(s) redriven", err=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser of the dead-letter tool."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.shared.deadletters", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    sub = parser.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="print dead-letter records (never their values)")
    ls.add_argument("--topic", help="a topic or its .dlq (default: every platform topic's .dlq)")
    ls.add_argument("--reason", help="only records with this dlq-reason")
    ls.add_argument("--limit", type=int, default=100, help="at most N records per topic, oldest first")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")

    rd = sub.add_parser("redrive", help="send chosen dead-letter records again to their origin topic")
    rd.add_argument("--topic", required=True, help="the dead-letter topic (or its origin topic)")
    which = rd.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int, action="append", help="a record's offset (repeatable)")
    which.add_argument("--all-reason", help="every record with this dlq-reason")
    rd.add_argument("--partition", type=int, default=0, help="the DLQ partition of --offset (default 0)")
    rd.add_argument("--group", help="only records dead-lettered by this consumer group")
    rd.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the dead-letter tool; return the exit code."""
    args = build_parser().parse_args(argv)
    runner = _list if args.command == "list" else _redrive
    return asyncio.run(runner(args))


if __name__ == "__main__":
    sys.exit(main())

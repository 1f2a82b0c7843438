"""Probes for platform tests and the bench: a process's peak memory, Mailpit counts, a topic's new records."""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engagiert.shared.mongo import create_client
from engagiert.shared.settings import aiokafka_options
from engagiert.shared.testing.kafka import partition_end_offsets


async def drop_databases(mongodb_url: str, names: list[str]) -> None:
    """Drop the named databases (a test's or a bench run's scratch databases)."""
    client = create_client(mongodb_url)
    try:
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()


def peak_rss_mib(pid: int) -> float | None:
    """Return the peak resident memory (``VmHWM``) of a running process in MiB, or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


@functools.cache
def _tls() -> ssl.SSLContext:
    """Return one TLS context for every probe's client: building one loads the CA bundle (~50 ms of CPU)."""
    return ssl.create_default_context()


class Mailpit:
    """Reads Mailpit's HTTP API: counts and lists messages by a search query (never deletes).

    A bench polls it every second beside the services it measures: each call's client reuses one
    TLS context instead of building its own.
    """

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")

    async def count(self, query: str) -> int:
        """Return how many messages match ``query`` (e.g. ``subject:"run-1234"``)."""
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30, verify=_tls()) as client:
            resp = await client.get("/api/v1/search", params={"query": query, "limit": 1})
            resp.raise_for_status()
            return int(resp.json()["messages_count"])

    async def messages(self, query: str, *, page: int = 500) -> list[dict[str, Any]]:
        """Return the summaries (``To``, ``MessageID``, ``Subject``, ...) of every message matching ``query``."""
        found: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=self.api_url, timeout=60, verify=_tls()) as client:
            while True:
                resp = await client.get("/api/v1/search", params={"query": query, "start": len(found), "limit": page})
                resp.raise_for_status()
                body = resp.json()
                found.extend(body["messages"])
                if not body["messages"] or len(found) >= int(body["messages_count"]):
                    return found


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Return the current end offset of every partition of ``topic`` (where records produced from now on start)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = {TopicPartition(topic, p["partition"]) for t in described for p in t.get("partitions") or []}
    return {tp.partition: offset for tp, offset in (await partition_end_offsets(bootstrap, partitions)).items()}


async def records_since(
    bootstrap: str,
    topic: str,
    offsets: Mapping[int, int],
    done: Callable[[list[Any]], bool],
    *,
    timeout: float = 60.0,
) -> list[Any]:
    """Read ``topic`` from ``offsets`` (from :func:`end_offsets`) until ``done(records)`` or ``timeout``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **aiokafka_options()
    )
    await consumer.start()
    records: list[Any] = []
    try:
        partitions = [TopicPartition(topic, p) for p in offsets]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, offsets[tp.partition])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(records):
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for recs in batch.values():
                records.extend(recs)
            if not batch:
                await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


def cloudevent(record: Any) -> dict[str, Any]:
    """Return a structured-mode CloudEvent record's JSON (empty for anything else)."""
    try:
        value = json.loads(record.value)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}

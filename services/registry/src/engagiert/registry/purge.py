"""Purges erased people from the inbound topics and their dead letters, which other systems wrote in plaintext.

Records the platform writes carry personal data sealed with the member's key (crypto-shredding);
inbound commands are written by other municipal systems, so the platform cannot seal them. After
an erasure the registry therefore:

1. waits until its consumer group has committed every inbound partition up to the end offset it
   had when the purge began: every command written before is applied (or dead-lettered) by then;
2. deletes each inbound partition's records below that committed offset (Kafka's DeleteRecords):
   all of them are applied, so nothing valid is lost, whoever they were about;
3. rewrites each inbound dead-letter partition: every dead letter up to its current end is read,
   those about a person erased from the register (their member id, or an identity key whose
   salted hash the tombstone keeps: e-mail, name with birth date, external reference) are left
   out, the others are published again to the same partition with their headers (and wait for
   the broker's acknowledgement), and only then is the old range deleted. A crash in between
   leaves a dead letter twice, never lost. A dead letter that is not JSON is kept: nothing ties
   it to a person.

Only then does the erasure count as complete (``erasure.inbound_purged_at``). A command about the
erased person that arrives later is refused (previously erased) and dead-lettered: the next
purge, run for the next erasure or every ``REGISTRY_PURGE_EVERY_SECONDS`` (dead letters only),
removes it.

The registry's consumer group is taken to be the only reader of the inbound topics (the
architecture says so): records it has applied are deleted even if another group has not read
them. A test that runs a registry of its own on the shared inbound topic races with the stack's
registry; such tests point ``REGISTRY_INBOUND_TOPIC`` at a topic of their own, or set
``REGISTRY_PURGE_INBOUND_RECORDS=false`` (step 2 is then left out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete

from engagiert.registry import domain
from engagiert.registry.config import RegistrySettings
from engagiert.registry.repository import Repository
from engagiert.shared.contracts import ExternalRef
from engagiert.shared.logging import get_logger
from engagiert.shared.topics import dlq

log = get_logger(__name__)

Marks = Callable[[str, list[str]], list[str]]


def identity_of(
    value: bytes | None, headers: Sequence[tuple[str, bytes]] | None
) -> tuple[str | None, str | None, list[str]]:
    """Return municipality, member id and identity keys of an inbound command (structured or binary)."""
    try:
        body = json.loads(value or b"")
    except ValueError:
        return None, None, []
    if not isinstance(body, dict):
        return None, None, []
    data = body.get("data") if "specversion" in body else body
    if not isinstance(data, dict):
        return None, None, []
    hdrs = {k: v.decode("utf-8", "replace") for k, v in headers or []}
    ags = data.get("municipality") or body.get("municipality") or hdrs.get("ce_municipality")
    member_id = data.get("member_id")
    keys: list[str] = []
    email = data.get("email")
    if isinstance(email, str):
        keys.append(f"e:{domain.email_key(email)}")
    given, family, dob = data.get("given_name"), data.get("family_name"), data.get("date_of_birth")
    if isinstance(given, str) and isinstance(family, str) and isinstance(dob, str):
        try:
            nk = domain.name_dob_key(given, family, date.fromisoformat(dob))
        except ValueError:
            nk = None
        if nk:
            keys.append(f"n:{nk}")
    ref = data.get("external_ref")
    if isinstance(ref, dict):
        with contextlib.suppress(ValueError):
            keys.append(f"x:{domain.ext_key(ExternalRef.model_validate(ref))}")
    return (str(ags) if ags else None), (str(member_id) if member_id else None), keys


class InboundPurge:
    """Deletes applied inbound commands and the erased people's dead letters (see the module's docstring)."""

    def __init__(
        self,
        *,
        settings: RegistrySettings,
        repo: Callable[[], Repository],
        marks: Marks,
        inbound: Sequence[str],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.marks = marks
        self.inbound = list(inbound)
        self.clock = clock
        self.security = settings.kafka_client_options()
        self.bootstrap = settings.kafka_bootstrap_servers
        self._last_full = time.monotonic()

    async def loop(self) -> None:
        """Purge whenever an erasure waits for it, and every ``purge_every_seconds`` anyway."""
        while True:
            try:
                if await self.repo().erasures_awaiting_purge():
                    await self.purge()
                elif time.monotonic() - self._last_full >= self.settings.purge_every_seconds:
                    await self.purge(dead_letters_only=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning("inbound_purge_failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(self.settings.purge_poll_seconds)

    async def purge(self, *, dead_letters_only: bool = False) -> dict[str, Any] | None:
        """Run one purge; return what it did, or None when the consumer has not caught up yet.

        ``dead_letters_only``: leave the inbound topics alone (the periodic round for late dead letters).
        """
        started = time.perf_counter()
        repo = self.repo()
        waiting = await repo.erasures_awaiting_purge()
        at = self.clock()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.security)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="engagiert-registry-purge",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
            **self.security,
        )
        await admin.start()
        await consumer.start()
        try:
            delete_inbound = self.settings.purge_inbound_records and not dead_letters_only
            inbound = await self._partitions(admin, self.inbound) if delete_inbound else []
            if not inbound:
                deleted = 0
            else:
                ends = await consumer.end_offsets(inbound)
                committed = await self._committed_at_least(admin, ends)
                if committed is None:
                    log.info("inbound_purge_waits", reason="the registry has not applied every inbound command yet")
                    return None
                deletions = {tp: RecordsToDelete(before_offset=off) for tp, off in committed.items() if off > 0}
                firsts = await consumer.beginning_offsets(inbound)
                if deletions:
                    await admin.delete_records(deletions)
                deleted = sum(max(committed[tp] - firsts[tp], 0) for tp in committed)
            dead = await self._partitions(admin, [dlq(t) for t in self.inbound])
            kept, dropped = await self._rewrite_dead_letters(admin, consumer, dead, repo)
        finally:
            await consumer.stop()
            await admin.close()
        if waiting and not dead_letters_only:
            await repo.mark_inbound_purged([d["_id"] for d in waiting], at=at)
        self._last_full = time.monotonic()
        if dead_letters_only and not dropped:
            return None
        result = {
            "erasures": len(waiting),
            "inbound_deleted": deleted,
            "dead_letters_kept": kept,
            "dead_letters_dropped": dropped,
            "seconds": round(time.perf_counter() - started, 2),
        }
        log.info("inbound_purged", **result)
        return result

    async def _partitions(self, admin: AIOKafkaAdminClient, names: list[str]) -> list[TopicPartition]:
        existing = set(await admin.list_topics())
        wanted = [n for n in names if n in existing]
        if not wanted:
            return []
        described = await admin.describe_topics(wanted)
        return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t.get("partitions") or []]

    async def _committed_at_least(
        self, admin: AIOKafkaAdminClient, ends: dict[TopicPartition, int], *, timeout: float = 20.0
    ) -> dict[TopicPartition, int] | None:
        """Return the group's committed offsets once each reaches ``ends``; None when it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            offsets = await admin.list_consumer_group_offsets(self.settings.group_id, partitions=list(ends))
            committed = {tp: (offsets[tp].offset if tp in offsets else -1) for tp in ends}
            if all(committed[tp] >= end or end == 0 for tp, end in ends.items()):
                return {tp: max(off, 0) for tp, off in committed.items()}
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.5)

    async def _rewrite_dead_letters(
        self,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        repo: Repository,
    ) -> tuple[int, int]:
        if not partitions:
            return 0, 0
        firsts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        todo = [tp for tp in partitions if firsts[tp] < ends[tp]]
        if not todo:
            return 0, 0
        records: dict[TopicPartition, list[Any]] = {tp: [] for tp in todo}
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, firsts[tp])
        open_parts = set(todo)
        while open_parts:
            batch = await consumer.getmany(*open_parts, timeout_ms=1000, max_records=5000)
            for tp, recs in batch.items():
                records[tp].extend(r for r in recs if r.offset < ends[tp])
            for tp in list(open_parts):
                if await consumer.position(tp) >= ends[tp]:
                    open_parts.discard(tp)
        erased_marks: dict[str, set[str]] = {}
        identities = {(tp, r.offset): identity_of(r.value, r.headers) for tp, recs in records.items() for r in recs}
        member_ids = list({m for _, m, _ in identities.values() if m})
        erased_ids = (
            {d["_id"] for d in await repo.members_by_ids(member_ids) if d.get("erased")} if member_ids else set()
        )
        for ags in {a for a, _, _ in identities.values() if a}:
            erased_marks[ags] = await repo.erased_marks_of(ags)

        def about_erased(tp: TopicPartition, offset: int) -> bool:
            ags, member_id, keys = identities[(tp, offset)]
            if member_id and member_id in erased_ids:
                return True
            return bool(ags and keys and erased_marks.get(ags, set()).intersection(self.marks(ags, keys)))

        kept = dropped = 0
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, **self.security
        )
        await producer.start()
        try:
            for tp, recs in records.items():
                keep = [r for r in recs if not about_erased(tp, r.offset)]
                dropped += len(recs) - len(keep)
                if len(keep) == len(recs):
                    continue  # nothing to remove here: leave the partition as it is
                sent = [
                    await producer.send(tp.topic, r.value, key=r.key, partition=tp.partition, headers=list(r.headers))
                    for r in keep
                ]
                for fut in sent:
                    await fut  # acknowledged by the broker before the old range goes
                kept += len(keep)
                await admin.delete_records({tp: RecordsToDelete(before_offset=ends[tp])})
        finally:
            await producer.stop()
        return kept, dropped

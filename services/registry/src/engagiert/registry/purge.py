"""Purges erased people from the inbound topics and their dead letters, which other systems wrote in plaintext.

Records the platform writes carry personal data sealed with the member's key (crypto-shredding);
inbound commands are written by other municipal systems, so the platform cannot seal them. After
an erasure the registry therefore:

1. waits until its consumer groups have committed every inbound partition up to the end offset it
   had when the purge began: every command written before is applied (or dead-lettered) by then.
   The inbound topics are the operators' channel (``inbound_topic``, group ``<group>``) and every
   connected system's topic (those matching ``systems_pattern``, group ``<group>-systems``);
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

The registry's consumer groups are taken to be the only readers of the inbound topics (the
architecture says so): records they have applied are deleted even if another group has not read
them. A test that runs a registry of its own on the shared inbound topics races with the stack's
registry; such tests set ``REGISTRY_PURGE_INBOUND_RECORDS=false`` (``fresh_registry()`` does):
that registry then neither deletes nor rewrites anything and marks its erasures purged at once
(only the registry of the installation purges). The erasure proof points ``REGISTRY_INBOUND_TOPIC``
at a topic of its own and its systems pattern at systems of its own, and purges.

The registry's Kafka user needs DELETE on the prefix ``registry.inbound.``, READ on the inbound
topics and their DLQs and WRITE on the DLQs (``engagiert.shared.access``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
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
        inbound: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.marks = marks
        self.inbound = inbound
        self.systems = re.compile(settings.systems_pattern)
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
        if not self.settings.purge_inbound_records:  # a test's registry on shared topics: it leaves them alone
            if waiting and not dead_letters_only:
                await repo.mark_inbound_purged([d["_id"] for d in waiting], at=at)
                log.info("inbound_purge_skipped", erasures=len(waiting), reason="REGISTRY_PURGE_INBOUND_RECORDS=false")
            self._last_full = time.monotonic()
            return None
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
            existing = set(await admin.list_topics())
            systems = sorted(t for t in existing if self.systems.match(t))
            groups = {self.settings.group_id: [self.inbound], f"{self.settings.group_id}-systems": systems}
            deleted = 0
            if not dead_letters_only:
                committed: dict[TopicPartition, int] = {}
                for group, names in groups.items():
                    parts = await self._partitions(admin, names, existing)
                    if not parts:
                        continue
                    applied = await self._committed_at_least(admin, group, await consumer.end_offsets(parts))
                    if applied is None:
                        log.info("inbound_purge_waits", reason="the registry has not applied every inbound command yet")
                        return None
                    committed.update(applied)
                if committed:
                    deletions = {tp: RecordsToDelete(before_offset=off) for tp, off in committed.items() if off > 0}
                    firsts = await consumer.beginning_offsets(list(committed))
                    if deletions:
                        await admin.delete_records(deletions)
                    deleted = sum(max(committed[tp] - firsts[tp], 0) for tp in committed)
            dead = await self._partitions(admin, [dlq(t) for t in [self.inbound, *systems]], existing)
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

    @staticmethod
    async def _partitions(admin: AIOKafkaAdminClient, names: list[str], existing: set[str]) -> list[TopicPartition]:
        wanted = [n for n in names if n in existing]
        if not wanted:
            return []
        described = await admin.describe_topics(wanted)
        return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t.get("partitions") or []]

    @staticmethod
    async def _committed_at_least(
        admin: AIOKafkaAdminClient, group: str, ends: dict[TopicPartition, int], *, timeout: float = 20.0
    ) -> dict[TopicPartition, int] | None:
        """Return ``group``'s committed offsets once each reaches ``ends``; None when it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            offsets = await admin.list_consumer_group_offsets(group, partitions=list(ends))
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

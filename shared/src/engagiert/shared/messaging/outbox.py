"""Publishes through an outbox: the state change and its events in one single-document write.

A service never writes state and then publishes. It writes the events into the changed
document itself (``_outbox``, an array, plus the indexed flag ``_outbox_pending``) in the
same update, which MongoDB (and FerretDB, which has no multi-document transactions) applies
atomically. :class:`OutboxRelay` then publishes the pending entries and removes them. A crash
between publish and removal publishes an entry again: consumers are idempotent by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.publisher import RecordPublisher
from engagiert.shared.metrics import OUTBOX_PENDING
from engagiert.shared.mongo import bulk_write, is_transient_store_error

OUTBOX = "_outbox"
PENDING = "_outbox_pending"
CLEAR_CONCURRENCY = 2

log = get_logger(__name__)


def outbox_fields(records: Sequence[OutgoingRecord]) -> dict[str, Any]:
    """Return the fields a new document carries to publish ``records`` (for an insert)."""
    return {OUTBOX: [r.to_document() for r in records], PENDING: bool(records)}


def with_outbox(update: Mapping[str, Any], records: Sequence[OutgoingRecord]) -> dict[str, Any]:
    """Return ``update`` (an update document) extended to append ``records`` to the outbox."""
    merged: dict[str, Any] = {op: dict(v) for op, v in update.items()}
    if not records:
        return merged
    merged.setdefault("$push", {})[OUTBOX] = {"$each": [r.to_document() for r in records]}
    merged.setdefault("$set", {})[PENDING] = True
    return merged


class OutboxRelay:
    """Publishes the pending outbox entries of some collections, then marks them published."""

    def __init__(
        self,
        *,
        collections: Sequence[AsyncCollection[dict[str, Any]]],
        publisher: RecordPublisher,
        poll_seconds: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self._collections = list(collections)
        self._publisher = publisher
        self._poll = poll_seconds
        self._batch = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add_collection(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        """Relay ``collection``'s outbox too."""
        self._collections.append(collection)

    async def ensure_indexes(self) -> None:
        """Create the index the relay's query uses."""
        for coll in self._collections:
            await coll.create_index([(PENDING, ASCENDING)], name="outbox_pending")

    def notify(self) -> None:
        """Wake the relay now: a write just added entries (saves waiting for the next poll)."""
        self._wake.set()

    async def start(self) -> None:
        """Create the indexes and start relaying in the background."""
        await self.ensure_indexes()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Publish what is pending (best effort), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    @property
    def running(self) -> bool:
        """Return True while the relay's loop is alive."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        backoff = self._poll
        while True:
            try:
                await self.drain()
                backoff = self._poll
            except Exception as exc:
                log.warning(
                    "outbox_relay_failed",
                    error=type(exc).__name__,
                    transient=is_transient_store_error(exc),
                )
                backoff = min(backoff * 2, 5.0)
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def drain(self) -> int:
        """Publish every pending entry now; return how many records were published."""
        total = 0
        for coll in self._collections:
            while True:
                docs, published = await self._relay_batch(coll)
                total += published
                if docs < self._batch:
                    break
        return total

    async def _relay_batch(self, coll: AsyncCollection[dict[str, Any]]) -> tuple[int, int]:
        """Relay one batch of pending documents; return (documents seen, records published)."""
        docs = await coll.find({PENDING: True}, {OUTBOX: 1}).limit(self._batch).to_list(None)
        if not docs:
            OUTBOX_PENDING.labels(collection=coll.name).set(0)
            return 0, 0
        records: list[OutgoingRecord] = []
        for doc in docs:
            records.extend(OutgoingRecord.from_document(e) for e in doc.get(OUTBOX) or [])
        await self._publisher.send_many(records)
        # One guarded update per document: when its outbox is still exactly what we published,
        # empty it and lower the flag. Unordered, two chunks at a time.
        clear: list[UpdateOne | UpdateMany] = [
            UpdateOne({"_id": doc["_id"], OUTBOX: doc.get(OUTBOX) or []}, {"$set": {OUTBOX: [], PENDING: False}})
            for doc in docs
        ]
        cleared = await bulk_write(coll, clear, ordered=False, concurrency=CLEAR_CONCURRENCY)
        if cleared < len(docs):
            await self._clear_changed(coll, docs)
        OUTBOX_PENDING.labels(collection=coll.name).set(len(docs))
        return len(docs), len(records)

    async def _clear_changed(self, coll: AsyncCollection[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
        """Remove what we published from documents a writer appended to meanwhile; the rest stays pending.

        ``$pullAll`` removes exactly the published entries (FerretDB v1 ignores a ``$pull`` with a
        condition such as ``{"id": {"$in": ...}}``, but matches whole subdocuments).
        """
        published = {doc["_id"]: doc.get(OUTBOX) or [] for doc in docs}
        changed = await coll.find({"_id": {"$in": list(published)}, PENDING: True}, {OUTBOX: 1}).to_list(None)
        ops: list[UpdateOne | UpdateMany] = []
        for doc in changed:
            current = doc.get(OUTBOX) or []
            if not current:
                ops.append(UpdateOne({"_id": doc["_id"], OUTBOX: doc.get(OUTBOX)}, {"$set": {PENDING: False}}))
            elif published[doc["_id"]]:
                ops.append(UpdateOne({"_id": doc["_id"]}, {"$pullAll": {OUTBOX: published[doc["_id"]]}}))
        await bulk_write(coll, ops, ordered=False)

"""Publishes through an outbox: the state change and its events in one single-document write.

A service never writes state and then publishes. It writes the events into the changed
document itself (``_outbox``, an array, plus the indexed flag ``_outbox_pending``) in the
same update, which MongoDB (and FerretDB, which has no multi-document transactions) applies
atomically. :class:`OutboxRelay` then reads the pending documents chunk by chunk, publishes each
chunk's entries and empties those outboxes with one guarded update per chunk (each document only if
its outbox is still exactly what was published), the three steps overlapping. A crash between
publish and clean-up publishes an entry again: consumers are idempotent by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.publisher import RecordPublisher
from engagiert.shared.metrics import OUTBOX_OLDEST_PENDING_SECONDS, OUTBOX_PENDING, OUTBOX_SECONDS_SINCE_PROGRESS
from engagiert.shared.mongo import bulk_write, is_transient_store_error

OUTBOX = "_outbox"
PENDING = "_outbox_pending"
CLEAR_CHUNK = 64
"""Documents the relay reads, publishes and clears as one chunk. Each document of a clean-up is
checked against every branch of the guard's ``$or`` (FerretDB evaluates them in Go), and FerretDB
holds the collection's lock while the update runs (writers of the collection wait), so chunks stay
small; with reading, publishing and clearing overlapped, 2,000 documents of 3 records went out at
5,100-6,000 records/s in chunks of 32, 6,400-7,300 in chunks of 64 and 6,200-7,600 in chunks of 128."""

log = get_logger(__name__)


def outbox_fields(records: Sequence[OutgoingRecord]) -> dict[str, Any]:
    """Return the fields a new document carries to publish ``records`` (for an insert)."""
    return {OUTBOX: [r.to_document() for r in records], PENDING: bool(records)}


def oldest_entry_age(docs: Sequence[Mapping[str, Any]], *, now: datetime | None = None) -> float:
    """Return the age in seconds of the oldest outbox entry of ``docs`` (by its CloudEvent ``time``), 0 if none.

    A document's entries are appended in the order they were made, so its first readable entry is its oldest.
    """
    times: list[datetime] = []
    for doc in docs:
        for entry in doc.get(OUTBOX) or []:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                times.append(datetime.fromisoformat(json.loads(entry["value"])["time"]))
                break
    if not times:
        return 0.0
    oldest = min(t if t.tzinfo else t.replace(tzinfo=UTC) for t in times)
    return max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds())


def with_outbox(update: Mapping[str, Any], records: Sequence[OutgoingRecord]) -> dict[str, Any]:
    """Return ``update`` (an update document) extended to append ``records`` to the outbox."""
    merged: dict[str, Any] = {op: dict(v) for op, v in update.items()}
    if not records:
        return merged
    merged.setdefault("$push", {})[OUTBOX] = {"$each": [r.to_document() for r in records]}
    merged.setdefault("$set", {})[PENDING] = True
    return merged


def _records(docs: Sequence[Mapping[str, Any]]) -> list[OutgoingRecord]:
    """Return the records of ``docs``' outboxes, document by document, each in its order."""
    return [OutgoingRecord.from_document(e) for doc in docs for e in doc.get(OUTBOX) or []]


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
        # Progress: the last time a drain emptied every collection; `_pending` says whether the
        # last drain left work behind (documents seen or a failure), so an idle relay never stalls.
        self._last_progress = time.monotonic()
        self._pending = False

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

    def seconds_since_progress(self) -> float:
        """Return the seconds since the relay last drained everything while work is pending, else 0."""
        return time.monotonic() - self._last_progress if self._pending else 0.0

    def stalled(self, limit_seconds: float) -> bool:
        """Return True when work is pending and the relay made no progress for ``limit_seconds``."""
        return self.seconds_since_progress() > limit_seconds

    async def _run(self) -> None:
        backoff = self._poll
        while True:
            # Cleared before the drain, not after: a write that wakes the relay while it drains
            # (after its query passed that collection) gets another round at once instead of
            # waiting for the next poll (OUTBOX_POLL_SECONDS, 0.5 s by default).
            self._wake.clear()
            try:
                await self.drain()
                backoff = self._poll
                self._pending = False
                self._last_progress = time.monotonic()
            except Exception as exc:
                self._pending = True
                log.warning(
                    "outbox_relay_failed",
                    error=type(exc).__name__,
                    transient=is_transient_store_error(exc),
                )
                backoff = min(backoff * 2, 5.0)
                if not self._stopping:
                    self._wake.clear()  # after a failure the backoff holds, however many writes wake it
            OUTBOX_SECONDS_SINCE_PROGRESS.set(self.seconds_since_progress())
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def drain(self) -> int:
        """Publish every pending entry now; return how many records were published.

        A collection that fails (its store errors, its records are refused) does not hold back
        the others: each is drained in turn, and the first error is raised once all were tried.
        """
        total = 0
        failure: Exception | None = None
        for coll in self._collections:
            try:
                total += await self._drain_collection(coll)
            except Exception as exc:
                log.warning("outbox_collection_failed", collection=coll.name, error=type(exc).__name__)
                failure = failure or exc
        if failure is not None:
            raise failure
        return total

    async def _drain_collection(self, coll: AsyncCollection[dict[str, Any]]) -> int:
        total = 0
        while True:
            docs, published = await self._relay_batch(coll)
            total += published
            if docs < self._batch:
                return total

    async def _relay_batch(self, coll: AsyncCollection[dict[str, Any]]) -> tuple[int, int]:
        """Relay one batch of pending documents; return (documents seen, records published).

        Three steps overlap, chunk by chunk: reading the next chunk from the store, publishing a
        chunk's records, and clearing the chunks the broker has acknowledged (in order, by one
        task). Chunks are handed to the producer in the order they were read, so a key's records
        keep their order. Once a chunk's records are refused (or a clean-up fails), no later chunk
        is cleared: their entries stay pending and go out again; consumers are idempotent by event id.
        """
        seen: list[dict[str, Any]] = []
        sending: list[tuple[list[dict[str, Any]], asyncio.Task[None]]] = []
        turns: asyncio.Queue[tuple[list[dict[str, Any]], asyncio.Task[None]] | None] = asyncio.Queue()
        clearer = asyncio.create_task(self._clear_in_turn(coll, turns))
        oldest = 0.0

        def hand_over(chunk: list[dict[str, Any]]) -> None:
            nonlocal oldest
            self._pending = True  # until a drain ends with everything published
            oldest = max(oldest, oldest_entry_age(chunk))
            sending.append((chunk, asyncio.create_task(self._publisher.send_many(_records(chunk)))))
            turns.put_nowait(sending[-1])

        try:
            chunk: list[dict[str, Any]] = []
            pending = coll.find({PENDING: True}, {OUTBOX: 1}, batch_size=CLEAR_CHUNK).limit(self._batch)
            async with pending:
                async for doc in pending:
                    seen.append(doc)
                    chunk.append(doc)
                    if len(chunk) == CLEAR_CHUNK:
                        hand_over(chunk)
                        chunk = []
                        if clearer.done():
                            break  # a chunk was refused: read no further
            if chunk:
                hand_over(chunk)
        finally:
            turns.put_nowait(None)
            OUTBOX_OLDEST_PENDING_SECONDS.labels(collection=coll.name).set(oldest)
            OUTBOX_PENDING.labels(collection=coll.name).set(len(seen))
            # Every send is settled (its error read) before this returns or raises, also when reading failed.
            await asyncio.gather(clearer, *(send for _, send in sending), return_exceptions=True)
        records, cleared = clearer.result()
        if cleared < len(seen):
            await self._clear_changed(coll, seen)
        return len(seen), records

    async def _clear_in_turn(
        self,
        coll: AsyncCollection[dict[str, Any]],
        turns: asyncio.Queue[tuple[list[dict[str, Any]], asyncio.Task[None]] | None],
    ) -> tuple[int, int]:
        """Clear each chunk once its records are acknowledged, in order; return (records published, documents cleared).

        Raises the first failure (a refused send, a failed clean-up) at once: the chunks after it
        are left pending, and the reader stops reading.
        """
        records = cleared = 0
        while (turn := await turns.get()) is not None:
            chunk, send = turn
            await send
            records += sum(len(doc.get(OUTBOX) or []) for doc in chunk)
            cleared += await self._clear_unchanged(coll, chunk)
        return records, cleared

    async def _clear_unchanged(self, coll: AsyncCollection[dict[str, Any]], docs: list[dict[str, Any]]) -> int:
        """Empty the outbox of those ``docs`` whose outbox is still exactly what was read; return how many.

        One update for the whole chunk: each document matches only its own branch of the ``$or``
        (its ``_id`` with the entries we published), so a document a writer appended to meanwhile
        is left alone. The update of each document is atomic on MongoDB and on the local stack's
        FerretDB (which holds the collection's lock for an update by several ``_id``); the
        ``$in`` lets either store find the documents by their ``_id`` index.
        """
        guard = [{"_id": doc["_id"], OUTBOX: doc.get(OUTBOX)} for doc in docs]
        result = await coll.update_many(
            {"_id": {"$in": [doc["_id"] for doc in docs]}, "$or": guard},
            {"$set": {OUTBOX: [], PENDING: False}},
        )
        return result.modified_count

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

"""Creates the MongoDB client and holds the store helpers every service shares."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import (
    AsyncMongoClient,
    DeleteMany,
    DeleteOne,
    InsertOne,
    ReplaceOne,
    UpdateMany,
    UpdateOne,
)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, PyMongoError

DUPLICATE_KEY = 11000

BULK_CHUNK = 16
"""Most write operations sent in one command. FerretDB v1.24.2 keeps a backend connection
(PostgreSQL) or read transaction (SQLite) open for every update of an update command until the
whole command ends; with about 50 to 100 updates in one command it runs out of them and stops
answering every client. Small chunks stay well clear of that and cost little on MongoDB."""


def create_client(url: str, *, app_name: str = "engagiert") -> AsyncMongoClient[dict[str, Any]]:
    """Return an async client for ``url`` (one per event loop), timezone-aware."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        retryWrites=False,  # FerretDB v1 has no retryable writes; our writes are idempotent anyway
    )


def is_transient_store_error(exc: BaseException) -> bool:
    """Return True when ``exc`` says the store is unreachable for now (retry), not that the write is wrong."""
    if isinstance(exc, ConnectionFailure):
        return True
    return isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError")


async def insert_new(collection: AsyncCollection[dict[str, Any]], docs: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``docs`` and skip those whose ``_id`` exists already; return how many were new.

    This is the idempotent write: a document whose ``_id`` derives from an event id is written
    once, however often the event arrives.
    """
    if not docs:
        return 0
    try:
        result = await collection.insert_many([dict(d) for d in docs], ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if other:
            raise
        return int(exc.details.get("nInserted", len(docs) - len(errors)))


async def insert_one_new(collection: AsyncCollection[dict[str, Any]], doc: Mapping[str, Any]) -> bool:
    """Insert ``doc`` unless its ``_id`` exists; return True when it was new."""
    try:
        await collection.insert_one(dict(doc))
        return True
    except DuplicateKeyError:
        return False


WriteOp = InsertOne[Any] | UpdateOne | UpdateMany | DeleteOne | DeleteMany | ReplaceOne[Any]


async def bulk_write(
    collection: AsyncCollection[dict[str, Any]],
    ops: Sequence[WriteOp],
    *,
    ordered: bool = True,
    concurrency: int = 1,
) -> int:
    """Run ``ops`` in chunks of :data:`BULK_CHUNK` (in order when ``ordered``); return documents modified.

    Use this instead of ``collection.bulk_write``: see :data:`BULK_CHUNK` for why. Unordered
    writes may run ``concurrency`` chunks at once (each chunk holds up to 16 of FerretDB's
    backend connections while it runs, so keep it small).
    """
    chunks = [list(ops[start : start + BULK_CHUNK]) for start in range(0, len(ops), BULK_CHUNK)]
    if ordered or concurrency <= 1 or len(chunks) <= 1:
        modified = 0
        for chunk in chunks:
            result = await collection.bulk_write(chunk, ordered=ordered)
            modified += result.modified_count + result.upserted_count
        return modified
    gate = asyncio.Semaphore(concurrency)

    async def run(chunk: list[WriteOp]) -> int:
        async with gate:
            result = await collection.bulk_write(chunk, ordered=False)
        return result.modified_count + result.upserted_count

    return sum(await asyncio.gather(*(run(chunk) for chunk in chunks)))

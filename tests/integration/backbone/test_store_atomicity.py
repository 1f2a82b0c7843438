"""The store applies each single-document update atomically, as MongoDB does.

Every service relies on it: a guarded ``$inc`` of seats, a relay clearing its outbox entries while
a handler updates the same document, a sender claiming a due delivery with ``find_one_and_update``.
FerretDB v1 on its own does not (it reads, updates in memory and writes back, unlocked: 60
concurrent ``$inc`` gave +12 here); the local stack builds it with the locks of
``deploy/local/ferretdb/``. These tests fail on a store that loses or doubles such updates.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CONCURRENCY = 60


async def test_concurrent_increments_of_one_document_are_all_applied(fresh_db: Any) -> None:
    """Sixty concurrent ``$inc`` of one document add sixty."""
    coll = fresh_db["counters"]
    await coll.insert_one({"_id": "c", "n": 0})
    await asyncio.gather(*(coll.update_one({"_id": "c"}, {"$inc": {"n": 1}}) for _ in range(CONCURRENCY)))
    assert (await coll.find_one({"_id": "c"}))["n"] == CONCURRENCY


async def test_a_guarded_update_never_exceeds_its_guard_under_concurrency(fresh_db: Any) -> None:
    """Fifty concurrent guarded ``$inc`` against 30 seats: exactly 30 succeed and say so."""
    coll = fresh_db["seats"]
    await coll.insert_one({"_id": "s", "taken": 0})
    results = await asyncio.gather(
        *(coll.update_one({"_id": "s", "taken": {"$lt": 30}}, {"$inc": {"taken": 1}}) for _ in range(50))
    )
    assert sum(r.modified_count for r in results) == 30
    assert (await coll.find_one({"_id": "s"}))["taken"] == 30


async def test_concurrent_claims_take_each_document_once(fresh_db: Any) -> None:
    """Sixty concurrent ``find_one_and_update`` claims of 20 queued documents: each claimed exactly once."""
    coll = fresh_db["queue"]
    await coll.insert_many([{"_id": f"d{i}", "status": "queued"} for i in range(20)])
    claimed = await asyncio.gather(
        *(coll.find_one_and_update({"status": "queued"}, {"$set": {"status": "claimed"}}) for _ in range(CONCURRENCY))
    )
    ids = [doc["_id"] for doc in claimed if doc is not None]
    assert sorted(ids) == sorted(f"d{i}" for i in range(20))


async def test_pushes_and_pulls_on_one_document_lose_nothing(fresh_db: Any) -> None:
    """Writers append to an array while another pulls what it saw (the outbox relay's pattern)."""
    coll = fresh_db["outbox"]
    await coll.insert_one({"_id": "agg", "entries": [], "seen": []})

    async def writer(i: int) -> None:
        await coll.update_one({"_id": "agg"}, {"$push": {"entries": {"n": i}}, "$inc": {"writes": 1}})

    async def relay() -> None:
        for _ in range(20):
            doc = await coll.find_one({"_id": "agg"})
            if doc and doc["entries"]:
                await coll.update_one(
                    {"_id": "agg"},
                    {"$pullAll": {"entries": doc["entries"]}, "$push": {"seen": {"$each": doc["entries"]}}},
                )
            await asyncio.sleep(0)

    await asyncio.gather(relay(), *(writer(i) for i in range(CONCURRENCY)))
    doc = await coll.find_one({"_id": "agg"})
    assert doc["writes"] == CONCURRENCY
    everything = [e["n"] for e in doc["entries"]] + [e["n"] for e in doc["seen"]]
    assert sorted(everything) == list(range(CONCURRENCY))

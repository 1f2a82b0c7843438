"""Lookups by ``_id``, equality, ``$in``, ``$ne`` and date-range filters select exactly what MongoDB selects.

The local stack's FerretDB lets PostgreSQL pre-select ``_id``, ``$in`` and date-range filters
(deploy/local/ferretdb/pushdown.patch: by the ``_id`` index, containment elsewhere, jsonb order for
dates) and answers containment from GIN indexes (containment-index.patch); these cases pin the
semantics the services rely on: ids of mixed types, array fields, dotted paths, empty lists,
updates and claims by ``$in``, ranges over arrays and other types.
"""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

pytestmark = pytest.mark.integration


async def test_in_filters_select_exactly_the_matching_documents(fresh_db: Any) -> None:
    """Strings, numbers, ObjectIds, arrays and dotted paths: the same answers as MongoDB gives."""
    coll = fresh_db["docs"]
    oid = ObjectId()
    await coll.insert_many(
        [
            {"_id": "a", "tags": ["x", "y"], "sub": {"k": "v1"}, "n": 1},
            {"_id": "b", "tags": "x", "sub": {"k": "v2"}, "n": 2},
            {"_id": 3, "tags": ["z"], "sub": {"k": "v1"}, "n": 3},
            {"_id": oid, "tags": [], "sub": {"k": ["v1", "v3"]}, "n": 4},
        ]
    )

    async def ids(filter_: dict[str, Any]) -> list[str]:
        return sorted(str(d["_id"]) for d in await coll.find(filter_).to_list(None))

    assert await ids({"_id": "a"}) == ["a"]
    assert await ids({"_id": {"$eq": "b"}}) == ["b"]
    assert await ids({"_id": 3}) == ["3"]
    assert await ids({"_id": oid}) == [str(oid)]
    assert await ids({"_id": "3"}) == []
    assert await ids({"_id": {"$in": ["a", "b", "zz"]}}) == ["a", "b"]
    assert await ids({"_id": {"$in": ["a", 3]}}) == ["3", "a"]
    assert await ids({"_id": {"$in": [oid, "b"]}}) == sorted([str(oid), "b"])
    assert await ids({"tags": {"$in": ["x"]}}) == ["a", "b"]
    assert await ids({"tags": {"$in": ["z", "q"]}}) == ["3"]
    assert await ids({"sub.k": {"$in": ["v1"]}}) == sorted(["a", "3", str(oid)])
    assert await ids({"sub.k": {"$in": ["v3", "v2"]}}) == sorted(["b", str(oid)])
    assert await ids({"_id": {"$in": []}}) == []
    assert await ids({"_id": {"$in": ["a"]}, "n": {"$in": [1, 2]}}) == ["a"]
    assert await ids({"tags": {"$in": ["x"]}, "_id": {"$in": ["b"]}}) == ["b"]


async def test_updates_and_claims_by_in_touch_exactly_the_named_documents(fresh_db: Any) -> None:
    """``update_many`` and ``find_one_and_update`` with ``$in`` on ``_id`` change only those documents."""
    coll = fresh_db["docs"]
    await coll.insert_many([{"_id": f"d{i:03d}", "n": 0, "status": "queued"} for i in range(300)])
    chosen = [f"d{i:03d}" for i in range(0, 300, 7)]
    result = await coll.update_many({"_id": {"$in": chosen}}, {"$inc": {"n": 1}})
    assert result.matched_count == len(chosen)
    assert sorted(d["_id"] for d in await coll.find({"n": 1}).to_list(None)) == chosen
    claimed = await coll.find_one_and_update(
        {"_id": {"$in": chosen[:3]}, "status": "queued"}, {"$set": {"status": "claimed"}}, sort=[("_id", 1)]
    )
    assert claimed is not None
    assert claimed["_id"] == chosen[0]
    assert await coll.count_documents({"status": "claimed"}) == 1


async def test_ne_and_nin_through_an_array_of_documents_mean_no_element_matches(fresh_db: Any) -> None:
    """``{"hours.entry_id": {"$ne": x}}`` excludes a document with any such entry (the read models' guards).

    Plain FerretDB v1 matched when any one element differed, which let a redelivered entry in twice
    (deploy/local/ferretdb/ne-on-arrays.patch).
    """
    coll = fresh_db["members"]
    await coll.insert_many(
        [
            {"_id": "m1", "hours": [{"entry_id": "e1"}, {"entry_id": "e2"}]},
            {"_id": "m2", "hours": []},
            {"_id": "m3"},
            {"_id": "m4", "hours": [{"entry_id": "e1"}]},
        ]
    )

    async def ids(filter_: dict[str, Any]) -> list[str]:
        return sorted(str(d["_id"]) for d in await coll.find(filter_).to_list(None))

    assert await ids({"hours.entry_id": {"$ne": "e1"}}) == ["m2", "m3"]
    assert await ids({"hours.entry_id": {"$ne": "e3"}}) == ["m1", "m2", "m3", "m4"]
    assert await ids({"hours.entry_id": {"$nin": ["e2", "e9"]}}) == ["m2", "m3", "m4"]
    guarded = await coll.update_one(
        {"_id": "m1", "hours.entry_id": {"$ne": "e2"}}, {"$push": {"hours": {"entry_id": "e2"}}}
    )
    assert guarded.matched_count == 0
    doc = await coll.find_one({"_id": "m1"})
    assert doc is not None
    assert [h["entry_id"] for h in doc["hours"]] == ["e1", "e2"]


async def test_equality_on_indexed_fields_selects_exactly_and_uses_an_index(fresh_db: Any) -> None:
    """Indexed fields: scalars, arrays holding the value, dotted paths, booleans, numbers, as MongoDB answers.

    On the local stack's FerretDB each index gets a GIN index beside it (deploy/local/ferretdb/
    containment-index.patch), so PostgreSQL answers the pushed-down containment from an index
    instead of scanning the table; dropping the index drops both, and creating it again works.
    """
    coll = fresh_db["docs"]
    await coll.create_index([("status", 1), ("n", 1)], name="status_n")
    await coll.create_index([("flag", 1)], name="flag")
    await coll.create_index([("sub.k", 1)], name="sub_k")
    await coll.insert_many(
        [
            {"_id": "a", "status": "queued", "flag": True, "sub": {"k": "v1"}, "n": 1},
            {"_id": "b", "status": ["sent", "queued"], "flag": False, "sub": {"k": ["v1", "v2"]}, "n": 2},
            {"_id": "c", "status": "sent", "flag": [True], "sub": {"k": "v2"}, "n": 1},
            {"_id": "d", "status": {"queued": 1}, "sub": "v1", "n": 1.0},
            *({"_id": f"x{i:04d}", "status": "sent", "flag": False, "n": 9} for i in range(3000)),
        ]
    )

    async def ids(filter_: dict[str, Any]) -> list[str]:
        return sorted(str(d["_id"]) for d in await coll.find(filter_).to_list(None) if not d["_id"].startswith("x"))

    assert await ids({"status": "queued"}) == ["a", "b"]
    assert await ids({"status": "queued", "n": 1}) == ["a"]
    assert await ids({"status": {"$eq": "sent"}}) == ["b", "c"]
    assert await ids({"flag": True}) == ["a", "c"]
    assert await ids({"sub.k": "v1"}) == ["a", "b"]
    assert await ids({"sub.k": "v2"}) == ["b", "c"]
    assert await ids({"n": 1}) == ["a", "c", "d"]
    assert await ids({"status": "absent"}) == []

    assert await ids({"status": {"$in": ["queued", "absent"]}}) == ["a", "b"]
    assert await ids({"sub.k": {"$in": ["v2"]}, "n": {"$in": [1, 2]}}) == ["b", "c"]

    for filter_ in ({"flag": True}, {"status": {"$in": ["queued", "absent"]}}):
        explain = await fresh_db.command("explain", {"find": "docs", "filter": filter_})
        if "filterPushdown" in explain:  # FerretDB: PostgreSQL's plan
            plan = str(explain["queryPlanner"])
            assert "Index Scan" in plan, (filter_, plan)
            assert "Seq Scan" not in plan, (filter_, plan)
    await coll.drop_index("flag")
    assert await ids({"flag": True}) == ["a", "c"]
    await coll.create_index([("flag", 1)], name="flag")
    assert await ids({"flag": True}) == ["a", "c"]


async def test_date_ranges_select_exactly_what_mongodb_selects(fresh_db: Any) -> None:
    """``$lt``/``$lte``/``$gt``/``$gte`` with a date: dates, arrays of dates, other types and missing fields.

    The local stack's FerretDB lets PostgreSQL pre-select date ranges (pushdown.patch; jsonb orders
    numbers, which hold the dates, among other types), so the superset it selects must keep every
    match: arrays holding a date in range, equal bounds.
    """
    from datetime import UTC, datetime, timedelta

    coll = fresh_db["docs"]
    await coll.create_index([("status", 1), ("at", 1)], name="due")
    t0 = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    await coll.insert_many(
        [
            {"_id": "early", "status": "queued", "at": t0 - timedelta(days=1)},
            {"_id": "equal", "status": "queued", "at": t0},
            {"_id": "late", "status": "queued", "at": t0 + timedelta(minutes=1)},
            {"_id": "array", "status": "queued", "at": [t0 + timedelta(days=9), t0 - timedelta(days=9)]},
            {"_id": "number", "status": "queued", "at": 5},
            {"_id": "text", "status": "queued", "at": "2026-12-01"},
            {"_id": "none", "status": "queued", "at": None},
            {"_id": "missing", "status": "queued"},
            {"_id": "sent", "status": "sent", "at": t0 - timedelta(days=1)},
        ]
    )

    async def ids(filter_: dict[str, Any]) -> list[str]:
        return sorted(d["_id"] for d in await coll.find(filter_).to_list(None))

    assert await ids({"status": "queued", "at": {"$lte": t0}}) == ["array", "early", "equal"]
    assert await ids({"status": "queued", "at": {"$lt": t0}}) == ["array", "early"]
    assert await ids({"status": "queued", "at": {"$gt": t0}}) == ["array", "late"]
    assert await ids({"status": "queued", "at": {"$gte": t0}}) == ["array", "equal", "late"]
    assert await ids({"at": {"$gte": t0 - timedelta(days=1), "$lt": t0}}) == ["array", "early", "sent"]
    assert await ids({"at": {"$gt": t0 + timedelta(days=30)}}) == []

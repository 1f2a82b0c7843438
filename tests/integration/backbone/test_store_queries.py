"""Lookups by ``_id``, ``$in`` and ``$ne`` filters select exactly what MongoDB selects.

The local stack's FerretDB lets PostgreSQL pre-select ``_id`` and ``$in`` filters (deploy/local/
ferretdb/pushdown.patch: by the ``_id`` index, containment elsewhere); these cases pin the
semantics the services rely on: ids of mixed types, array fields, dotted paths, empty lists,
updates and claims by ``$in``.
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

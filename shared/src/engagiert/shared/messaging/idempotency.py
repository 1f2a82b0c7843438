"""Applies an event to one document at most once: a guarded update keyed by the event id.

For effects that are not an insert of a document keyed by the event id (use
:func:`engagiert.shared.mongo.insert_new` for those), the document remembers the ids of the
last events applied to it. The update's filter refuses a document that has the id already,
and the same single-document update records it: no transaction needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from engagiert.shared.mongo import bulk_write, insert_new

APPLIED = "_applied"
KEEP_APPLIED = 2000
"""How many event ids a document remembers. A re-delivery repeats at most the uncommitted
batch (``consumer_max_records``, 500 by default, at most 10,000), so this must exceed the
events one document can receive in one batch."""


def not_applied(filter_: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """Return ``filter_`` narrowed to documents that have not applied ``event_id`` yet."""
    return {**filter_, APPLIED: {"$ne": event_id}}


def mark_applied(update: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """Return ``update`` extended to record ``event_id`` as applied (the newest ids are kept)."""
    merged: dict[str, Any] = {op: dict(v) for op, v in update.items()}
    merged.setdefault("$push", {})[APPLIED] = {"$each": [event_id], "$slice": -KEEP_APPLIED}
    return merged


async def trim_applied(collection: AsyncCollection[dict[str, Any]], ids: list[Any]) -> int:
    """Cut the remembered event ids of documents ``ids`` back to the newest ``KEEP_APPLIED``.

    MongoDB does this in the update itself (``$slice``); FerretDB v1 ignores ``$slice`` in a
    ``$push``, so the list is trimmed here, once it has grown past twice the limit, with a
    ``$pullAll`` of the oldest ids (safe against concurrent pushes). Returns documents trimmed.
    """
    trimmed = 0
    overgrown = collection.find({"_id": {"$in": ids}, f"{APPLIED}.{2 * KEEP_APPLIED}": {"$exists": True}}, {APPLIED: 1})
    async for doc in overgrown:
        oldest = doc[APPLIED][:-KEEP_APPLIED]
        await collection.update_one({"_id": doc["_id"]}, {"$pullAll": {APPLIED: oldest}})
        trimmed += 1
    return trimmed


async def apply_guarded(
    collection: AsyncCollection[dict[str, Any]],
    changes: list[tuple[Any, dict[str, Any], str]],
) -> None:
    """Apply each ``(document id, update, event_id)`` at most once per event id, in bulk.

    Missing documents are created first (an idempotent insert of the bare ``_id``), so the
    guarded updates never upsert: an upsert racing another, or finding the event applied
    already, would fail with a duplicate key, which FerretDB v1 reports in a malformed reply.
    """
    if not changes:
        return
    ids = list(dict.fromkeys(doc_id for doc_id, _, _ in changes))
    await insert_new(collection, [{"_id": doc_id} for doc_id in ids])
    await bulk_write(
        collection,
        [UpdateOne(not_applied({"_id": doc_id}, eid), mark_applied(u, eid)) for doc_id, u, eid in changes],
    )
    await trim_applied(collection, ids)

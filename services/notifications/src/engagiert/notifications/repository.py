"""The only module that talks to MongoDB: contacts, deliveries and branding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.messaging.outbox import outbox_fields, with_outbox
from engagiert.shared.mongo import insert_new, insert_one_new

CONTACTS = "contacts"
DELIVERIES = "deliveries"
BRANDING = "branding"

Doc = dict[str, Any]


class Repository:
    """Reads and writes this service's collections; every state change carries its events (outbox)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.contacts = db[CONTACTS]
        self.deliveries = db[DELIVERIES]
        self.branding = db[BRANDING]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries use."""
        await self.deliveries.create_index([("status", ASCENDING), ("not_before", ASCENDING)], name="due")
        await self.deliveries.create_index([("status", ASCENDING), ("lease_until", ASCENDING)], name="leases")
        await self.deliveries.create_index([("municipality", ASCENDING), ("member_id", ASCENDING)], name="member")
        await self.deliveries.create_index([("municipality", ASCENDING), ("request_id", ASCENDING)], name="request")
        await self.deliveries.create_index(
            [("municipality", ASCENDING), ("cancel_key", ASCENDING), ("status", ASCENDING)], name="cancel"
        )
        await self.deliveries.create_index([("member_id", ASCENDING)], name="member_only")

    # -- contacts ------------------------------------------------------------------------------

    async def contacts_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        """Return the contacts with these member ids."""
        docs = await self.contacts.find({"_id": {"$in": list(ids)}}).to_list(None)
        return {d["_id"]: d for d in docs}

    async def contact(self, member_id: str) -> Doc | None:
        """Return one contact, or None."""
        return await self.contacts.find_one({"_id": member_id})

    async def insert_contact(self, doc: Doc) -> bool:
        """Insert a new contact; return False when one with this id exists."""
        return await insert_one_new(self.contacts, doc)

    async def update_contact_if_newer(self, member_id: str, revision: int, fields: Doc) -> bool:
        """Set ``fields`` when the stored revision is older than ``revision`` and not erased."""
        result = await self.contacts.update_one(
            {"_id": member_id, "revision": {"$lt": revision}, "erased": {"$ne": True}},
            {"$set": {**fields, "revision": revision}},
        )
        return result.modified_count == 1

    async def erase_contact(self, member_id: str, tombstone: Doc, records: Sequence[OutgoingRecord]) -> None:
        """Replace the contact by a tombstone without personal data, with the confirmation in its outbox."""
        await self.contacts.replace_one({"_id": member_id}, {**tombstone, **outbox_fields(records)}, upsert=True)

    async def erase_content(self, member_id: str, now: datetime) -> int:
        """Delete the rendered content and parameters of a member's deliveries; keep the log entries."""
        result = await self.deliveries.update_many(
            {"member_id": member_id, "content_erased": {"$ne": True}},
            {"$unset": {"content": "", "params": ""}, "$set": {"content_erased": True, "updated_at": now}},
        )
        return result.modified_count

    # -- deliveries ----------------------------------------------------------------------------

    async def insert_deliveries(self, docs: Sequence[Doc]) -> int:
        """Insert new deliveries; those whose id exists (a replayed request) are skipped."""
        return await insert_new(self.deliveries, docs)

    async def insert_delivery(self, doc: Doc) -> bool:
        """Insert one delivery; return False when its id exists."""
        return await insert_one_new(self.deliveries, doc)

    async def cancel(self, *, municipality: str, cancel_key: str, member_id: str | None, now: datetime) -> int:
        """Cancel the queued deliveries with ``cancel_key`` (of one member or all); return how many."""
        query: Doc = {"municipality": municipality, "cancel_key": cancel_key, "status": "queued"}
        if member_id is not None:
            query["member_id"] = member_id
        result = await self.deliveries.update_many(
            query, {"$set": {"status": "cancelled", "reason": "cancelled", "updated_at": now}}
        )
        return result.modified_count

    async def due(self, now: datetime, limit: int) -> list[Doc]:
        """Return ids and member ids of deliveries to work on: queued and due, or claimed with an expired lease."""
        due = (
            await self.deliveries.find({"status": "queued", "not_before": {"$lte": now}}, {"_id": 1, "member_id": 1})
            .sort("not_before", ASCENDING)
            .limit(limit)
            .to_list(None)
        )
        stale = (
            await self.deliveries.find({"status": "sending", "lease_until": {"$lte": now}}, {"_id": 1, "member_id": 1})
            .limit(limit)
            .to_list(None)
        )
        return stale + due

    async def claim(self, delivery_id: str, now: datetime, lease_until: datetime) -> Doc | None:
        """Claim a due delivery (queued -> sending with a lease) unless another worker has it; return it."""
        update = {"$set": {"status": "sending", "lease_until": lease_until, "updated_at": now}}
        doc = await self.deliveries.find_one_and_update(
            {"_id": delivery_id, "status": "queued", "not_before": {"$lte": now}},
            update,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            # A claim whose lease ran out: its worker died (or hangs) between claim and log update.
            doc = await self.deliveries.find_one_and_update(
                {"_id": delivery_id, "status": "sending", "lease_until": {"$lte": now}},
                update,
                return_document=ReturnDocument.AFTER,
            )
        return doc

    async def finish(
        self, delivery_id: str, lease_until: datetime, update: Doc, records: Sequence[OutgoingRecord]
    ) -> bool:
        """Apply ``update`` with its facts if this worker's claim still holds; return whether it did."""
        result = await self.deliveries.update_one(
            {"_id": delivery_id, "status": "sending", "lease_until": lease_until}, with_outbox(update, records)
        )
        return result.modified_count == 1

    async def delivery(self, municipality: str, delivery_id: str) -> Doc | None:
        """Return one delivery of a municipality."""
        return await self.deliveries.find_one({"_id": delivery_id, "municipality": municipality})

    async def list_deliveries(
        self,
        municipality: str,
        *,
        member_id: str | None,
        request_id: str | None,
        status: str | None,
        limit: int,
        skip: int,
    ) -> list[Doc]:
        """Return a municipality's deliveries, newest first, filtered."""
        query: Doc = {"municipality": municipality}
        if member_id:
            query["member_id"] = member_id
        if request_id:
            query["request_id"] = request_id
        if status:
            query["status"] = status
        return await self.deliveries.find(query).sort("created_at", DESCENDING).skip(skip).limit(limit).to_list(None)

    async def count_resend(self, delivery_id: str) -> int:
        """Count one more resend of a delivery; return the new count."""
        doc = await self.deliveries.find_one_and_update(
            {"_id": delivery_id}, {"$inc": {"resends": 1}}, return_document=ReturnDocument.AFTER
        )
        return int(doc["resends"]) if doc else 0

    # -- branding ------------------------------------------------------------------------------

    async def get_branding(self, municipality: str) -> Doc | None:
        """Return a municipality's branding, or None."""
        return await self.branding.find_one({"_id": municipality})

    async def put_branding(self, municipality: str, fields: Doc, now: datetime) -> None:
        """Store a municipality's branding."""
        await self.branding.replace_one(
            {"_id": municipality}, {"_id": municipality, **fields, "updated_at": now}, upsert=True
        )

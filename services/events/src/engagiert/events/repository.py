"""Talks to MongoDB, the only module that does: members, recognition events, invitations, honours, rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.shared.mongo import bulk_write, insert_new, insert_one_new

MEMBERS = "members"
HOURS_PENDING = "_hours_pending"
"""On a member: hours entries counted in ``hours_by_day`` whose applied record is not written yet."""
HOURS_APPLIED = "hours_applied"
"""One document per hours entry applied to the read model (``_id`` = entry id): the idempotency record."""
EVENTS = "recognition_events"
INVITATIONS = "invitations"
HONOURS = "honours"
RULES = "honour_rules"
MUNICIPALITIES = "municipalities"
"""The read model of municipalities: what the network's figures show of each (name, kind, size, naming)."""
SEATS_TAKEN = "seats_taken"  # on the event: the seats accepted invitees and their guests hold
OUTBOX_COLLECTIONS = (MEMBERS, EVENTS, INVITATIONS, HONOURS)
INSERT_CHUNK = 1000
MEMBER_BATCH = 500

Doc = dict[str, Any]


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Create the indexes the queries use."""
    await db[MEMBERS].create_index([("municipality", ASCENDING)], name="by_municipality")
    await db[EVENTS].create_index([("municipality", ASCENDING), ("starts_at", ASCENDING)], name="by_municipality")
    await db[INVITATIONS].create_index([("event_id", ASCENDING), ("status", ASCENDING)], name="by_event_status")
    await db[INVITATIONS].create_index([("event_id", ASCENDING), ("seq", ASCENDING)], name="by_event_seq")
    await db[INVITATIONS].create_index([("member_id", ASCENDING)], name="by_member")
    await db[HONOURS].create_index([("municipality", ASCENDING), ("status", ASCENDING)], name="by_status")
    await db[HONOURS].create_index([("member_id", ASCENDING)], name="by_member")
    await db[HONOURS].create_index([("status", ASCENDING), ("valid_until", ASCENDING)], name="by_validity")
    await db[HONOURS].create_index([("granted_at", ASCENDING)], name="by_granted_at")
    await db[INVITATIONS].create_index([("municipality", ASCENDING), ("event_id", ASCENDING)], name="by_municipality")


class Repository:
    """Reads and writes the events service's documents."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    @property
    def members(self) -> AsyncCollection[Doc]:
        """Return the member read model."""
        return self.db[MEMBERS]

    @property
    def events(self) -> AsyncCollection[Doc]:
        """Return the recognition events."""
        return self.db[EVENTS]

    @property
    def invitations(self) -> AsyncCollection[Doc]:
        """Return the invitations."""
        return self.db[INVITATIONS]

    @property
    def honours(self) -> AsyncCollection[Doc]:
        """Return the honours (proposed, granted, rejected, expired)."""
        return self.db[HONOURS]

    # -- members -------------------------------------------------------------------------------

    async def ensure_members(self, ids_with_municipality: Mapping[str, str]) -> None:
        """Create bare member documents for ids not seen yet (idempotent)."""
        await insert_new(self.members, [{"_id": i, "municipality": m} for i, m in ids_with_municipality.items()])

    async def apply(self, collection: AsyncCollection[Doc], ops: Sequence[UpdateOne]) -> int:
        """Run guarded updates in small chunks; return documents modified."""
        return await bulk_write(collection, ops) if ops else 0

    @property
    def hours_applied(self) -> AsyncCollection[Doc]:
        """Return the hours entries applied to the read model (idempotency records, by entry id)."""
        return self.db[HOURS_APPLIED]

    async def hours_state(self, member_ids: Sequence[str]) -> dict[str, Doc]:
        """Return what applying hours needs of these members: their day sums, pending entries, legacy entries."""
        projection = {"hours_by_day": 1, HOURS_PENDING: 1, "hours": 1, "erased": 1}
        docs = await self.members.find({"_id": {"$in": list(member_ids)}}, projection).to_list(None)
        return {d["_id"]: d for d in docs}

    async def applied_hours(self, entry_ids: Sequence[str]) -> set[str]:
        """Return which of these hours entries were applied (their records exist)."""
        if not entry_ids:
            return set()
        docs = await self.hours_applied.find({"_id": {"$in": list(entry_ids)}}, {"_id": 1}).to_list(None)
        return {d["_id"] for d in docs}

    async def record_hours_applied(self, docs: Sequence[Doc]) -> None:
        """Insert the records of applied hours entries (existing ones are skipped)."""
        await insert_new(self.hours_applied, docs)

    async def forget_hours_of(self, member_id: str) -> None:
        """Delete an erased member's records of applied hours."""
        await self.hours_applied.delete_many({"member_id": member_id})

    async def members_by_ids(self, ids: Sequence[str]) -> list[Doc]:
        """Return the member documents with these ids."""
        return await self.members.find({"_id": {"$in": list(ids)}}).to_list(None)

    def members_of(self, municipality: str) -> AsyncCursor[Doc]:
        """Return a cursor over every member of a municipality (the criteria are evaluated in the service).

        Read in batches of ``MEMBER_BATCH``: a municipality's members with their hours are not held at once.
        """
        return self.members.find({"municipality": municipality}, batch_size=MEMBER_BATCH)

    # -- recognition events --------------------------------------------------------------------

    async def insert_event(self, doc: Doc) -> None:
        """Insert a new recognition event."""
        await self.events.insert_one(doc)

    async def event(self, municipality: str, event_id: str) -> Doc | None:
        """Return a recognition event of a municipality."""
        return await self.events.find_one({"_id": event_id, "municipality": municipality}, {"_outbox": 0})

    async def events_of(self, municipality: str) -> list[Doc]:
        """Return a municipality's recognition events by start time."""
        cursor = self.events.find({"municipality": municipality}, {"_outbox": 0}).sort("starts_at", ASCENDING)
        return await cursor.to_list(None)

    async def update_event(self, filter_: Doc, update: Doc) -> Doc | None:
        """Apply a guarded update to an event; return the new document or None when the guard failed."""
        return await self.events.find_one_and_update(filter_, update, return_document=ReturnDocument.AFTER)

    # -- invitations ---------------------------------------------------------------------------

    async def invitation_ids(self, event_id: str) -> list[Doc]:
        """Return (id, status, seq) of every invitation of an event."""
        return await self.invitations.find({"event_id": event_id}, {"_id": 1, "status": 1, "seq": 1}).to_list(None)

    async def insert_invitations(self, docs: Sequence[Doc]) -> int:
        """Insert invitations in large unordered chunks, skipping existing ids; return how many were new."""
        new = 0
        for start in range(0, len(docs), INSERT_CHUNK):
            new += await insert_new(self.invitations, docs[start : start + INSERT_CHUNK])
        return new

    async def invitation(self, invitation_id: str) -> Doc | None:
        """Return one invitation."""
        return await self.invitations.find_one({"_id": invitation_id}, {"_outbox": 0})

    async def update_invitation(self, filter_: Doc, update: Doc) -> Doc | None:
        """Apply a guarded update to an invitation; return the new document or None."""
        return await self.invitations.find_one_and_update(filter_, update, return_document=ReturnDocument.AFTER)

    async def invitations_to_notify_of_cancellation(self, event_id: str, statuses: Sequence[str]) -> list[Doc]:
        """Return (id, member, status) of an event's invitations in ``statuses`` not yet told of its cancellation."""
        cursor = self.invitations.find(
            {"event_id": event_id, "status": {"$in": list(statuses)}, "cancellation_notified_at": {"$exists": False}},
            {"_id": 1, "member_id": 1, "status": 1},
        )
        return await cursor.to_list(None)

    async def invitations_to_notify_of_change(self, event_id: str, statuses: Sequence[str], sequence: int) -> list[Doc]:
        """Return (id, member, status) of an event's invitations in ``statuses`` not yet told of change ``sequence``."""
        told = [{"change_notified_sequence": {"$exists": False}}, {"change_notified_sequence": {"$lt": sequence}}]
        cursor = self.invitations.find(
            {"event_id": event_id, "status": {"$in": list(statuses)}, "$or": told},
            {"_id": 1, "member_id": 1, "status": 1},
        )
        return await cursor.to_list(None)

    async def open_invitations_of_member(self, member_id: str) -> list[Doc]:
        """Return a member's invitations that still hold or wait for a place (invited, waitlisted, accepted)."""
        filter_ = {"member_id": member_id, "status": {"$in": ["invited", "waitlisted", "accepted"]}}
        return await self.invitations.find(filter_, {"_outbox": 0}).to_list(None)

    async def first_waitlisted(self, event_id: str) -> Doc | None:
        """Return the waitlisted invitation that is next in line."""
        cursor = self.invitations.find({"event_id": event_id, "status": "waitlisted"}, {"_outbox": 0})
        docs = await cursor.sort("waitlist_position", ASCENDING).limit(1).to_list(1)
        return docs[0] if docs else None

    async def invitations_of(self, event_id: str, *, status: str | None = None) -> list[Doc]:
        """Return an event's invitations in issue order."""
        filter_: Doc = {"event_id": event_id}
        if status:
            filter_["status"] = status
        return await self.invitations.find(filter_, {"_outbox": 0}).sort("seq", ASCENDING).to_list(None)

    async def count_invitations(self, event_id: str) -> dict[str, int]:
        """Return the number of an event's invitations per status."""
        rows = await (
            await self.invitations.aggregate(
                [{"$match": {"event_id": event_id}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
            )
        ).to_list(None)
        return {str(r["_id"]): int(r["n"]) for r in rows}

    # -- seats ---------------------------------------------------------------------------------

    async def count_seats(self, event_id: str) -> int:
        """Return how many seats of an event are taken."""
        doc = await self.db[EVENTS].find_one({"_id": event_id}, {SEATS_TAKEN: 1})
        return int((doc or {}).get(SEATS_TAKEN, 0))

    async def take_seats(self, event_id: str, capacity: int, needed: int) -> bool:
        """Take ``needed`` seats if the event (still at ``capacity``) has them free; return whether it did.

        One guarded ``$inc`` of the event's counter: the store applies it atomically, so
        concurrent answers never take more than the capacity.
        """
        result = await self.db[EVENTS].update_one(
            {
                "_id": event_id,
                "capacity": capacity,
                "$or": [{SEATS_TAKEN: {"$lte": capacity - needed}}, {SEATS_TAKEN: {"$exists": False}}],
            },
            {"$inc": {SEATS_TAKEN: needed}},
        )
        return result.modified_count == 1

    async def release_seats(self, event_id: str, count: int) -> None:
        """Give ``count`` seats back."""
        if count:
            await self.db[EVENTS].update_one({"_id": event_id}, {"$inc": {SEATS_TAKEN: -count}})

    # -- honours and rules ---------------------------------------------------------------------

    async def rules(self, municipality: str) -> Doc | None:
        """Return a municipality's honour rules document."""
        return await self.db[RULES].find_one({"_id": municipality})

    async def put_rules(self, municipality: str, rules: Doc) -> None:
        """Store a municipality's honour rules."""
        await self.db[RULES].replace_one({"_id": municipality}, {"_id": municipality, **rules}, upsert=True)

    async def insert_honours(self, docs: Sequence[Doc]) -> int:
        """Insert honour proposals whose id is new; return how many."""
        return await insert_new(self.honours, docs)

    async def honour(self, municipality: str, honour_id: str) -> Doc | None:
        """Return one honour of a municipality."""
        return await self.honours.find_one({"_id": honour_id, "municipality": municipality}, {"_outbox": 0})

    async def honour_by_id(self, honour_id: str) -> Doc | None:
        """Return one honour, whatever its municipality (the public check)."""
        return await self.honours.find_one({"_id": honour_id}, {"_outbox": 0})

    async def honours_of(self, municipality: str, *, status: str | None = None) -> list[Doc]:
        """Return a municipality's honours."""
        filter_: Doc = {"municipality": municipality}
        if status:
            filter_["status"] = status
        return await self.honours.find(filter_, {"_outbox": 0}).sort("_id", ASCENDING).to_list(None)

    async def live_honours_of_member(self, member_id: str) -> list[Doc]:
        """Return a member's proposed and granted honours."""
        filter_ = {"member_id": member_id, "status": {"$in": ["proposed", "granted"]}}
        return await self.honours.find(filter_, {"_outbox": 0}).to_list(None)

    async def update_honour(self, filter_: Doc, update: Doc) -> Doc | None:
        """Apply a guarded update to an honour; return the new document or None."""
        return await self.honours.find_one_and_update(filter_, update, return_document=ReturnDocument.AFTER)

    async def granted_valid_until(
        self,
        *,
        before: str | None = None,
        through: str | None = None,
        not_renewed: bool = False,
        lifelong: Sequence[str],
    ) -> list[Doc]:
        """Return granted, expiring honours whose ``valid_until`` is before ``before`` or from ``through``'s range.

        ``before``: last valid day earlier than this ISO date (expired); ``through``: last valid day
        up to this ISO date (expiring soon); ``not_renewed``: no renewal proposed yet.
        """
        validity: Doc = {"$ne": None}
        if before is not None:
            validity["$lt"] = before
        if through is not None:
            validity["$lte"] = through
        filter_: Doc = {"status": "granted", "valid_until": validity, "kind": {"$nin": list(lifelong)}}
        if not_renewed:
            filter_["renewal_proposed_at"] = {"$exists": False}
        return await self.honours.find(filter_, {"_outbox": 0, "verification_code": 0}).to_list(None)

    async def holders(self, municipality: str, kinds: Sequence[str]) -> set[str]:
        """Return the ids of members holding a granted honour of one of ``kinds``."""
        cursor = self.honours.find(
            {"municipality": municipality, "status": "granted", "kind": {"$in": list(kinds)}}, {"member_id": 1}
        )
        return {d["member_id"] for d in await cursor.to_list(None)}

    # -- municipalities and figures ------------------------------------------------------------

    @property
    def municipalities(self) -> AsyncCollection[Doc]:
        """Return the read model of municipalities (from the registry's profiles)."""
        return self.db[MUNICIPALITIES]

    async def put_municipality_if_newer(self, profile: Doc) -> bool:
        """Store a municipality's profile unless a newer revision is stored; return whether it was stored."""
        doc = {"_id": profile["ags"], **profile}
        if await insert_one_new(self.municipalities, doc):
            return True
        result = await self.municipalities.replace_one({"_id": doc["_id"], "revision": {"$lt": doc["revision"]}}, doc)
        return result.modified_count == 1

    async def list_municipalities(self) -> list[Doc]:
        """Return every municipality the read model knows, by key."""
        return await self.municipalities.find({}).sort("_id", ASCENDING).to_list(None)

    async def events_for_figures(self, *, start: Any, end: Any, municipality: str | None) -> list[Doc]:
        """Return (id, municipality, status, start) of the recognition events starting from ``start`` before ``end``."""
        query: Doc = {"starts_at": {"$gte": start, "$lt": end}}
        if municipality is not None:
            query["municipality"] = municipality
        projection = {"municipality": 1, "status": 1, "starts_at": 1}
        return await self.events.find(query, projection).to_list(None)

    async def invitation_counts(self, event_ids: Sequence[str]) -> list[Doc]:
        """Return the number of invitations per event, status and attendance, from one projected read.

        Counted here rather than by ``$group``: FerretDB v1 runs an aggregation several times slower
        than a find of the same documents; on MongoDB both are fast at these sizes.
        """
        if not event_ids:
            return []
        cursor = self.invitations.find(
            {"event_id": {"$in": list(event_ids)}}, {"_id": 0, "event_id": 1, "status": 1, "attended": 1}
        )
        counts: Counter[tuple[str, str, Any]] = Counter()
        async for doc in cursor:
            counts[(doc["event_id"], doc.get("status", ""), doc.get("attended"))] += 1
        return [{"_id": {"e": e, "s": s, "a": a}, "n": n} for (e, s, a), n in counts.items()]

    async def honours_granted_counts(self, *, start: Any, end: Any, municipality: str | None) -> list[Doc]:
        """Return the number of honours granted from ``start`` before ``end`` per municipality and kind."""
        query: Doc = {"granted_at": {"$gte": start, "$lt": end}}
        if municipality is not None:
            query["municipality"] = municipality
        counts: Counter[tuple[str, str]] = Counter()
        async for doc in self.honours.find(query, {"_id": 0, "municipality": 1, "kind": 1}):
            counts[(doc["municipality"], doc.get("kind", ""))] += 1
        return [{"_id": {"m": m, "k": k}, "n": n} for (m, k), n in counts.items()]

    async def cards_expiring_counts(
        self, *, first: str, last: str, valid_by: str, municipality: str | None
    ) -> dict[str, int]:
        """Return per municipality the cards granted (or expired) by ``valid_by`` ending ``first``..``last``."""
        query: Doc = {
            "status": {"$in": ["granted", "expired"]},
            "valid_until": {"$gte": first, "$lte": last},
            "valid_from": {"$lte": valid_by},
        }
        if municipality is not None:
            query["municipality"] = municipality
        counts: Counter[str] = Counter()
        async for doc in self.honours.find(query, {"_id": 0, "municipality": 1}):
            counts[doc["municipality"]] += 1
        return dict(counts)

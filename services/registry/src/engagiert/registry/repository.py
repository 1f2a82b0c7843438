"""Reads and writes the registry's collections; the only module that talks to MongoDB."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING, DeleteMany, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.messaging.outbox import OUTBOX, PENDING, outbox_fields, with_outbox
from engagiert.shared.mongo import DUPLICATE_KEY, bulk_write, insert_new
from engagiert.shared.shredding import MemberKey

MUNICIPALITIES = "municipalities"
ORGANISATIONS = "organisations"
MEMBERS = "members"
HOURS = "hours"
FIGURES = "hours_figures"
"""Per member: the running sums of its hours (see ``domain.RunningFigures``), guarded by ``rev``."""
INBOX = "inbox"
PRACTICE_EXAMPLES = "practice_examples"
"""The network's practice examples: one document each, with ``municipality`` (the author), ``state``, ``revision``."""
SYSTEMS = "systems"
"""Connected systems and their grants (municipalities, permissions), by name; revoked ones stay, marked."""
MEMBER_KEYS = "member_keys"
"""Per member: the data key their personal data is sealed with on the topics; erasure leaves a tombstone."""
OUTBOX_COLLECTIONS = (MEMBERS, FIGURES, HOURS, MUNICIPALITIES)
"""The collections whose documents carry an outbox (``hours`` for entries written before the
figures carried their facts; ``municipalities`` for their profiles)."""

Doc = dict[str, Any]


class Conflict(Exception):
    """A guarded write found the document changed meanwhile (revision moved on)."""


class Repository:
    """Gives the use cases the registry's documents."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.municipalities: AsyncCollection[Doc] = db[MUNICIPALITIES]
        self.organisations: AsyncCollection[Doc] = db[ORGANISATIONS]
        self.members: AsyncCollection[Doc] = db[MEMBERS]
        self.hours: AsyncCollection[Doc] = db[HOURS]
        self.figures: AsyncCollection[Doc] = db[FIGURES]
        self.inbox: AsyncCollection[Doc] = db[INBOX]
        self.practice_examples: AsyncCollection[Doc] = db[PRACTICE_EXAMPLES]
        self.systems: AsyncCollection[Doc] = db[SYSTEMS]
        self.member_keys: AsyncCollection[Doc] = db[MEMBER_KEYS]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries use."""
        await self.organisations.create_index([("municipality", ASCENDING), ("_id", ASCENDING)])
        await self.members.create_index([("municipality", ASCENDING), ("_id", ASCENDING)])
        await self.members.create_index([("municipality", ASCENDING), ("email_key", ASCENDING)])
        await self.members.create_index([("municipality", ASCENDING), ("name_dob_key", ASCENDING)])
        await self.members.create_index([("municipality", ASCENDING), ("ext_keys", ASCENDING)])
        await self.members.create_index([("municipality", ASCENDING), ("erased_marks", ASCENDING)])
        await self.hours.create_index([("member_id", ASCENDING)])
        await self.practice_examples.create_index([("state", ASCENDING), ("updated_at", DESCENDING)])
        await self.hours.create_index([("municipality", ASCENDING), ("date_from", ASCENDING)])

    # -- municipalities and organisations ------------------------------------------------------

    async def insert_municipality(self, doc: Doc, records: Sequence[OutgoingRecord] = ()) -> bool:
        """Insert a municipality with the facts it publishes; return False when its key exists."""
        try:
            await self.municipalities.insert_one({**doc, **outbox_fields(records)})
            return True
        except DuplicateKeyError:
            return False

    async def get_municipality(self, ags: str) -> Doc | None:
        """Return a municipality or None."""
        return await self.municipalities.find_one({"_id": ags})

    async def existing_municipalities(self, keys: Sequence[str]) -> set[str]:
        """Return which of ``keys`` are known municipalities."""
        docs = await self.municipalities.find({"_id": {"$in": list(keys)}}, {"_id": 1}).to_list(None)
        return {d["_id"] for d in docs}

    async def list_municipalities(self) -> list[Doc]:
        """Return every municipality, by key."""
        return await self.municipalities.find({}).sort("_id", ASCENDING).to_list(None)

    async def update_municipality(
        self, ags: str, changes: Doc, *, revision: int, records: Sequence[OutgoingRecord] = ()
    ) -> Doc | None:
        """Set ``changes`` on a municipality still at ``revision``, with its facts; None when it moved on."""
        from pymongo import ReturnDocument

        # Documents written before profiles were published have no revision: they count as 0.
        guard: Doc = {"_id": ags, "revision": revision} if revision else {"_id": ags, "revision": {"$exists": False}}
        return await self.municipalities.find_one_and_update(
            guard,
            with_outbox({"$set": {**changes, "revision": revision + 1}}, records),
            return_document=ReturnDocument.AFTER,
        )

    async def insert_organisation(self, doc: Doc) -> None:
        """Insert an organisation."""
        await self.organisations.insert_one(doc)

    async def get_organisation(self, ags: str, org_id: str) -> Doc | None:
        """Return an organisation of ``ags`` or None."""
        return await self.organisations.find_one({"_id": org_id, "municipality": ags})

    async def organisation_by_name(self, ags: str, name: str) -> Doc | None:
        """Return the organisation of ``ags`` with this exact name, or None."""
        return await self.organisations.find_one({"municipality": ags, "name": name})

    async def list_organisations(self, ags: str) -> list[Doc]:
        """Return the organisations of ``ags``."""
        return await self.organisations.find({"municipality": ags}).sort("_id", ASCENDING).to_list(None)

    async def update_organisation(self, ags: str, org_id: str, changes: Doc) -> Doc | None:
        """Set ``changes`` on an organisation; return it, or None when unknown."""
        from pymongo import ReturnDocument

        return await self.organisations.find_one_and_update(
            {"_id": org_id, "municipality": ags}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    async def delete_organisation(self, ags: str, org_id: str) -> bool:
        """Delete an organisation; return whether it existed."""
        result = await self.organisations.delete_one({"_id": org_id, "municipality": ags})
        return result.deleted_count == 1

    # -- practice examples -----------------------------------------------------------------------

    async def insert_practice_example(self, doc: Doc) -> None:
        """Insert a practice example."""
        await self.practice_examples.insert_one(doc)

    async def get_practice_example(self, example_id: str, *, ags: str | None = None) -> Doc | None:
        """Return a practice example (of ``ags`` when given), or None."""
        query: Doc = {"_id": example_id}
        if ags is not None:
            query["municipality"] = ags
        return await self.practice_examples.find_one(query)

    async def update_practice_example(self, ags: str, example_id: str, changes: Doc, *, revision: int) -> Doc | None:
        """Set ``changes`` on a published example of ``ags`` still at ``revision``; None when it moved on or is gone."""
        return await self.practice_examples.find_one_and_update(
            {"_id": example_id, "municipality": ags, "state": "published", "revision": revision},
            {"$set": {**changes, "revision": revision + 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def find_practice_examples(
        self,
        *,
        words: Sequence[str],
        field: str | None,
        kind: str | None,
        municipality: str | None,
        skip: int,
        limit: int,
    ) -> tuple[list[Doc], int]:
        """Return a page of published examples, newest change first, and how many match in all."""
        query: Doc = {"state": "published"}
        if field:
            query["field"] = field
        if kind:
            query["municipality_kind"] = kind
        if municipality:
            query["municipality"] = municipality
        if words:
            # FerretDB v1 has no $text: every word must occur in the folded search text.
            query["$and"] = [{"search": {"$regex": re.escape(word)}} for word in words]
        total = await self.practice_examples.count_documents(query)
        docs = (
            await self.practice_examples.find(query, {"search": 0})
            .sort([("updated_at", DESCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
            .to_list(None)
        )
        return docs, total

    # -- connected systems -----------------------------------------------------------------------

    async def systems_by_names(self, names: Sequence[str]) -> list[Doc]:
        """Return the connected systems (revoked ones too) with these names."""
        return await self.systems.find({"_id": {"$in": list(names)}}).to_list(None)

    async def save_system(self, doc: Doc) -> None:
        """Insert or replace a connected system's grant."""
        await self.systems.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def revoke_system(self, name: str, *, at: Any) -> Doc | None:
        """Mark a connected system revoked; return it, or None when unknown."""
        from pymongo import ReturnDocument

        return await self.systems.find_one_and_update(
            {"_id": name}, {"$set": {"status": "revoked", "revoked_at": at}}, return_document=ReturnDocument.AFTER
        )

    async def list_systems(self) -> list[Doc]:
        """Return every connected system, by name."""
        return await self.systems.find({}).sort("_id", ASCENDING).to_list(None)

    # -- members ---------------------------------------------------------------------------------

    async def get_member(self, ags: str, member_id: str) -> Doc | None:
        """Return a member (or tombstone) of ``ags`` without its outbox, or None."""
        return await self.members.find_one({"_id": member_id, "municipality": ags}, {OUTBOX: 0})

    async def members_by_ids(self, ids: Sequence[str]) -> list[Doc]:
        """Return the members with these ids (any municipality; callers check)."""
        return await self.members.find({"_id": {"$in": list(ids)}}, {OUTBOX: 0, "_applied": 0}).to_list(None)

    async def members_by_ext_keys(self, ags: str, keys: Sequence[str]) -> list[Doc]:
        """Return the members of ``ags`` that carry any of these external keys."""
        return await self.members.find(
            {"municipality": ags, "ext_keys": {"$in": list(keys)}}, {OUTBOX: 0, "_applied": 0}
        ).to_list(None)

    async def find_duplicate(
        self, ags: str, *, email_key: str | None, name_dob_key: str | None, exclude: str | None = None
    ) -> Doc | None:
        """Return a member of ``ags`` with the same e-mail or the same name and date of birth.

        One query per key rather than one ``$or``: FerretDB v1 passes no top-level ``$or`` to
        PostgreSQL, so the ``$or`` read and decoded every member of the municipality on each
        registration (10,000 members: about a second), while each key alone is answered by its index.
        """
        for field, key in (("email_key", email_key), ("name_dob_key", name_dob_key)):
            if not key:
                continue
            query: Doc = {"municipality": ags, field: key}
            if exclude:
                query["_id"] = {"$ne": exclude}
            found = await self.members.find_one(query, {"_id": 1})
            if found is not None:
                return found
        return None

    async def duplicate_keys(self, ags: str) -> tuple[set[str], set[str], set[str]]:
        """Return the e-mail keys, name+birth keys and import keys of every member of ``ags``."""
        emails: set[str] = set()
        names: set[str] = set()
        imports: set[str] = set()
        cursor = self.members.find(
            {"municipality": ags}, {"email_key": 1, "name_dob_key": 1, "import_key": 1, "_id": 0}
        )
        async for doc in cursor:
            if doc.get("email_key"):
                emails.add(doc["email_key"])
            if doc.get("name_dob_key"):
                names.add(doc["name_dob_key"])
            if doc.get("import_key"):
                imports.add(doc["import_key"])
        return emails, names, imports

    async def insert_member(self, doc: Doc, records: Sequence[OutgoingRecord]) -> bool:
        """Insert a member with its events; return False when its id exists."""
        try:
            await self.members.insert_one({**doc, **outbox_fields(records)})
            return True
        except DuplicateKeyError:
            return False

    async def insert_members(self, docs: Sequence[tuple[Doc, Sequence[OutgoingRecord]]], *, chunk: int = 500) -> int:
        """Insert many members with their events, skipping existing ids; return how many were new."""
        created = 0
        for start in range(0, len(docs), chunk):
            part = [{**d, **outbox_fields(r)} for d, r in docs[start : start + chunk]]
            created += await insert_new(self.members, part)
        return created

    async def replace_member_guarded(
        self,
        doc: Doc,
        *,
        expected_revision: int,
        set_fields: Mapping[str, Any],
        unset_fields: Sequence[str] = (),
        records: Sequence[OutgoingRecord],
        event_id: str | None = None,
    ) -> None:
        """Write ``set_fields`` and the events if the member still has ``expected_revision``; else raise Conflict."""
        update: Doc = {"$set": dict(set_fields)}
        if unset_fields:
            update["$unset"] = dict.fromkeys(unset_fields, "")
        query: Doc = {"_id": doc["_id"], "revision": expected_revision}
        if event_id is not None:
            query["_applied"] = {"$ne": event_id}
            update["$push"] = {"_applied": event_id}
        result = await self.members.update_one(query, with_outbox(update, records))
        if result.matched_count != 1:
            raise Conflict(doc["_id"])

    async def erase_member(
        self,
        ags: str,
        member_id: str,
        *,
        revision: int,
        set_fields: Doc,
        unset: Sequence[str],
        record: OutgoingRecord,
    ) -> bool:
        """Turn a member of ``revision`` into a tombstone; the outbox keeps only the erasure event.

        Older events in the outbox carry personal data, so they go with the rest.
        """
        update: Doc = {
            "$set": {**set_fields, OUTBOX: [record.to_document()], PENDING: True},
            "$unset": dict.fromkeys(unset, ""),
        }
        query = {"_id": member_id, "municipality": ags, "erased": {"$ne": True}, "revision": revision}
        result = await self.members.update_one(query, update)
        return result.matched_count == 1

    async def erased_among(self, ags: str, marks: Sequence[str]) -> set[str]:
        """Return which of the salted identity hashes belong to people erased from ``ags``."""
        found: set[str] = set()
        async for doc in self.members.find(
            {"municipality": ags, "erased_marks": {"$in": list(marks)}}, {"erased_marks": 1}
        ):
            found.update(doc.get("erased_marks") or [])
        return found & set(marks)

    async def erased_marks_of(self, ags: str) -> set[str]:
        """Return the salted identity hashes of every person erased from ``ags``."""
        found: set[str] = set()
        async for doc in self.members.find({"municipality": ags, "erased": True}, {"erased_marks": 1}):
            found.update(doc.get("erased_marks") or [])
        return found

    # -- member keys (crypto-shredding) ------------------------------------------------------------

    async def create_member_keys(
        self, member_ids: Sequence[str], *, now: Any, chunk: int = 1000
    ) -> dict[str, MemberKey]:
        """Give each member without a key (and without a key tombstone) a fresh one; return the keys it created."""
        created: dict[str, MemberKey] = {}
        ids = list(dict.fromkeys(member_ids))
        for start in range(0, len(ids), chunk):
            keys = {m: MemberKey.new() for m in ids[start : start + chunk]}
            docs = [{"_id": m, "kid": k.kid, "key": Binary(k.secret), "created_at": now} for m, k in keys.items()]
            try:
                await self.member_keys.insert_many(docs, ordered=False)
                taken: set[str] = set()
            except BulkWriteError as exc:  # those that have a key (or a tombstone) keep it
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                taken = {docs[e["index"]]["_id"] for e in errors}
            created.update({m: k for m, k in keys.items() if m not in taken})
        return created

    async def member_keys_of(self, member_ids: Sequence[str], *, chunk: int = 1000) -> dict[str, MemberKey | None]:
        """Return the key of each member that has one; None for a shredded one; absent when unknown."""
        found: dict[str, MemberKey | None] = {}
        ids = list(dict.fromkeys(member_ids))
        for start in range(0, len(ids), chunk):
            async for doc in self.member_keys.find({"_id": {"$in": ids[start : start + chunk]}}):
                key = doc.get("key")
                found[doc["_id"]] = MemberKey(kid=doc["kid"], secret=bytes(key)) if key else None
        return found

    async def shred_member_key(self, member_id: str, *, now: Any) -> None:
        """Replace a member's key with a tombstone (kept, so nothing can give them a key again)."""
        await self.member_keys.update_one(
            {"_id": member_id, "key": {"$exists": True}},
            {"$set": {"shredded_at": now}, "$unset": {"key": "", "kid": ""}},
        )
        await insert_new(self.member_keys, [{"_id": member_id, "shredded_at": now}])

    async def erasures_awaiting_purge(self, *, limit: int = 10_000) -> list[Doc]:
        """Return the tombstones whose inbound records and dead letters are not purged yet."""
        query = {"erased": True, "erasure.inbound_purged_at": None}
        return await self.members.find(query, {"_id": 1}).limit(limit).to_list(None)

    async def mark_inbound_purged(self, member_ids: Sequence[str], *, at: Any) -> None:
        """Record that a purge which began after these erasures finished."""
        if member_ids:
            await self.members.update_many(
                {"_id": {"$in": list(member_ids)}, "erased": True}, {"$set": {"erasure.inbound_purged_at": at}}
            )

    async def record_confirmation(self, ags: str, member_id: str, service: str, at: Any) -> bool:
        """Record a service's erasure confirmation; return False when no such tombstone exists."""
        result = await self.members.update_one(
            {"_id": member_id, "municipality": ags, "erased": True},
            {"$set": {f"erasure.confirmations.{service}": at}},
        )
        return result.matched_count == 1

    async def list_members(
        self,
        ags: str,
        *,
        status: str | None,
        organisation_id: str | None,
        field: str | None,
        name: str | None,
        after: str | None,
        limit: int,
        ids: list[str] | None = None,
    ) -> list[Doc]:
        """Return a page of members of ``ags`` by id, after the cursor id (only ``ids`` if given)."""
        query: Doc = {"municipality": ags, "erased": {"$ne": True}}
        if status:
            query["status"] = status
        if organisation_id:
            query["org_ids"] = organisation_id
        if field:
            query["fields"] = field
        if name:
            import re

            query["search"] = {"$regex": re.escape(name)}
        id_filter: Doc = {}
        if ids is not None:
            id_filter["$in"] = sorted(set(ids))
        if after:
            id_filter["$gt"] = after
        if id_filter:
            query["_id"] = id_filter
        projection = {OUTBOX: 0, "_applied": 0}
        return await self.members.find(query, projection).sort("_id", ASCENDING).limit(limit).to_list(None)

    async def all_members(self, ags: str) -> list[Doc]:
        """Return every living member of ``ags`` (export)."""
        return (
            await self.members.find({"municipality": ags, "erased": {"$ne": True}}, {OUTBOX: 0, "_applied": 0})
            .sort("_id", ASCENDING)
            .to_list(None)
        )

    # -- hours -------------------------------------------------------------------------------------

    async def hours_of(self, member_ids: Sequence[str]) -> list[Doc]:
        """Return the hours documents of these members (figures only)."""
        return await self.hours.find(
            {"member_id": {"$in": list(member_ids)}},
            {"_id": 1, "member_id": 1, "hours": 1, "date_from": 1, "date_to": 1},
        ).to_list(None)

    async def insert_hours(self, docs: Sequence[Doc]) -> int:
        """Insert hours documents, skipping existing ids; return how many were new (facts go with the figures)."""
        return await insert_new(self.hours, docs)

    async def delete_hours_of(self, member_id: str) -> None:
        """Delete a member's hours documents and running figures."""
        await bulk_write(self.hours, [DeleteMany({"member_id": member_id})])
        await self.figures.delete_one({"_id": member_id})

    async def existing_hours(self, entry_ids: Sequence[str]) -> set[str]:
        """Return which of these hours entries exist (looked up by ``_id``)."""
        if not entry_ids:
            return set()
        docs = await self.hours.find({"_id": {"$in": list(entry_ids)}}, {"_id": 1}).to_list(None)
        return {d["_id"] for d in docs}

    async def figures_of(self, member_ids: Sequence[str]) -> dict[str, Doc]:
        """Return the running figures documents of these members (by ``_id``, without outbox), where kept."""
        docs = await self.figures.find({"_id": {"$in": list(member_ids)}}, {OUTBOX: 0}).to_list(None)
        return {d["_id"]: d for d in docs}

    async def save_figures(self, changes: Sequence[tuple[str, int | None, Doc, Sequence[OutgoingRecord]]]) -> set[str]:
        """Write ``(member_id, revision read or None for new, fields, facts)``; return the members changed meanwhile.

        Each write is guarded by the revision read (a new document by its ``_id``), so two writers
        never lose each other's hours: the loser learns it here and starts again from a fresh read.
        The facts go into the same write's outbox.
        """
        conflicts: set[str] = set()
        new = [{"_id": m, "rev": 1, **fields, **outbox_fields(r)} for m, rev, fields, r in changes if rev is None]
        if new:
            try:
                await self.figures.insert_many(new, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                conflicts.update(new[e["index"]]["_id"] for e in errors)
        updates = [(m, rev, fields, r) for m, rev, fields, r in changes if rev is not None]
        if updates:
            token = uuid.uuid4().hex  # tells this call's writes from a concurrent writer's
            ops = [
                UpdateOne(
                    {"_id": m, "rev": rev}, with_outbox({"$set": {**fields, "rev": rev + 1, "written_by": token}}, r)
                )
                for m, rev, fields, r in updates
            ]
            if await bulk_write(self.figures, ops, ordered=False) < len(ops):
                now = await self.figures_of([m for m, _, _, _ in updates])
                conflicts.update(m for m, _, _, _ in updates if (now.get(m) or {}).get("written_by") != token)
        return conflicts

    # -- figures -------------------------------------------------------------------------------------

    async def members_for_figures(self, ags: str | None) -> list[Doc]:
        """Return what the figures need of the living members of ``ags`` (None: of every municipality), in one read."""
        query: Doc = {"erased": {"$ne": True}}
        if ags is not None:
            query["municipality"] = ags
        projection = {"municipality": 1, "status": 1, "created_at": 1, "date_of_birth": 1, "engagements": 1}
        return await self.members.find(query, projection).to_list(None)

    async def organisation_counts(self, *, until: Any, ags: str | None) -> dict[str, int]:
        """Return the number of organisations per municipality created before ``until`` (one projected read)."""
        query: Doc = {"created_at": {"$lt": until}}
        if ags is not None:
            query["municipality"] = ags
        counts: dict[str, int] = {}
        async for doc in self.organisations.find(query, {"_id": 0, "municipality": 1}):
            counts[doc["municipality"]] = counts.get(doc["municipality"], 0) + 1
        return counts

    async def hours_for_figures(self, *, start: str, end: str, ags: str | None) -> list[Doc]:
        """Return the hours entries of ``ags`` (None: every municipality) that may fall from ``start`` to ``end``.

        Entries that begin by ``end``; the caller drops those that ended before ``start`` (ISO dates
        compare as strings; a range on one field is what the store does well).
        """
        query: Doc = {"date_from": {"$lte": end}}
        if ags is not None:
            query["municipality"] = ags
        projection = {"member_id": 1, "municipality": 1, "hours": 1, "date_from": 1, "date_to": 1}
        return await self.hours.find(query, projection).to_list(None)

    # -- inbox ---------------------------------------------------------------------------------------

    async def remember(self, event_ids: Sequence[str]) -> None:
        """Record inbound event ids as applied."""
        await insert_new(self.inbox, [{"_id": i} for i in event_ids])

    async def applied(self, event_ids: Sequence[str]) -> set[str]:
        """Return which inbound event ids were applied already."""
        docs = await self.inbox.find({"_id": {"$in": list(event_ids)}}, {"_id": 1}).to_list(None)
        return {d["_id"] for d in docs}

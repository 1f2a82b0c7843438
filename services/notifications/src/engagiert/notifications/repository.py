"""The only module that talks to MongoDB: contacts, deliveries, the send journal, contents and branding.

FerretDB v1 (the local store) answers every query but an insert and an unfiltered ``find().limit()`` by
reading the whole collection: an update by ``_id`` costs a scan of ``deliveries``. The sender therefore
touches ``deliveries`` a constant number of times per batch, never once per message: it claims a batch
with one ``update_many`` stamping a claim token and reads it back by that token, journals the accepted
messages chunk by chunk with inserts into ``contents`` and ``sends`` (their answers and facts), and
logs the batch as sent with one ``update_many`` by token.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.messaging.outbox import outbox_fields, with_outbox
from engagiert.shared.mongo import bulk_write, insert_new, insert_one_new

CONTACTS = "contacts"
DELIVERIES = "deliveries"
SENDS = "sends"
CONTENTS = "contents"
BRANDING = "branding"
ERASURES = "erasures"
MUNICIPALITIES = "municipalities"

Doc = dict[str, Any]


class Repository:
    """Reads and writes this service's collections; every state change carries its events (outbox)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.contacts = db[CONTACTS]
        self.deliveries = db[DELIVERIES]
        self.sends = db[SENDS]
        self.contents = db[CONTENTS]
        self.branding = db[BRANDING]
        self.erasures = db[ERASURES]
        self.municipalities = db[MUNICIPALITIES]

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
        await self.deliveries.create_index([("claim", ASCENDING)], name="claim")
        await self.contents.create_index([("member_id", ASCENDING)], name="member")
        # Created at start: FerretDB reading a collection that does not exist yet, while another client
        # updates claimed deliveries, left both waiting for ever (the lease test hung in extend_claim).
        await self.municipalities.create_index([("revision", ASCENDING)], name="revision")
        await self.branding.create_index([("updated_at", ASCENDING)], name="updated")

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

    async def request_withdrawal(
        self, member_id: str, municipality: str, event_id: str, record: OutgoingRecord, now: datetime
    ) -> bool:
        """Put a withdrawal command in a known contact's outbox, once per ``event_id``; return whether it was put."""
        result = await self.contacts.update_one(
            {
                "_id": member_id,
                "municipality": municipality,
                "erased": {"$ne": True},
                "unsubscribe_event": {"$ne": event_id},
            },
            with_outbox({"$set": {"unsubscribe_event": event_id, "unsubscribed_at": now}}, [record]),
        )
        return result.modified_count == 1

    async def erase_contact(self, member_id: str, tombstone: Doc, records: Sequence[OutgoingRecord]) -> None:
        """Replace the contact by a tombstone without personal data, with the confirmation in its outbox."""
        await self.contacts.replace_one({"_id": member_id}, {**tombstone, **outbox_fields(records)}, upsert=True)

    async def erase_content(self, member_id: str, now: datetime) -> int:
        """Delete the rendered content, parameters and server answers of a member's deliveries; keep the log entries."""
        # Only those logged sent: a claim still open needs its journal entry to be recognised as accepted.
        query: Doc = {"member_id": member_id, "status": "sent", "claim": {"$exists": True}}
        sent = await self.deliveries.find(query, {"claim": 1}).to_list(None)
        if sent:
            # The journal's answers of older versions held the server's text, which may name the address.
            await self.sends.update_many(
                {"claim": {"$in": sorted({d["claim"] for d in sent})}},
                {"$unset": {f"answers.{d['_id']}": "" for d in sent}},
            )
        result = await self.deliveries.update_many(
            {"member_id": member_id, "content_erased": {"$ne": True}},
            {
                "$unset": {"content": "", "params": "", "answer": ""},
                "$set": {"content_erased": True, "updated_at": now},
            },
        )
        await self.contents.delete_many({"member_id": member_id})
        return result.modified_count

    async def mark_erasing(self, member_id: str, now: datetime) -> None:
        """Note that a member is being erased: from this write on the sender starts no message to them."""
        await self.erasures.update_one({"_id": member_id}, {"$setOnInsert": {"at": now}}, upsert=True)

    async def erasing(self, member_ids: Sequence[str]) -> set[str]:
        """Return which of these members are erased or being erased (a small collection: one entry per erasure)."""
        if not member_ids:
            return set()
        return {d["_id"] async for d in self.erasures.find({"_id": {"$in": list(member_ids)}}, {"_id": 1})}

    async def drop_contents_of_erased(self, contents: Sequence[Doc]) -> int:
        """Delete just-written contents whose member is being erased (the erasure's sweep may have run before)."""
        erased = await self.erasing(list({c["member_id"] for c in contents}))
        if not erased:
            return 0
        result = await self.contents.delete_many(
            {"_id": {"$in": [c["_id"] for c in contents if c["member_id"] in erased]}}
        )
        return result.deleted_count

    async def letter_runs(self, municipality: str) -> list[Doc]:
        """Return the runs that produced printed letters: run id, count, last change; newest first."""
        docs = await self.deliveries.find(
            {"municipality": municipality, "status": "letter"}, {"letter_run": 1, "updated_at": 1}
        ).to_list(None)
        runs: dict[str, Doc] = {}
        for d in docs:
            run = runs.setdefault(d["letter_run"], {"run": d["letter_run"], "letters": 0, "at": d["updated_at"]})
            run["letters"] += 1
            run["at"] = max(run["at"], d["updated_at"])
        return sorted(runs.values(), key=lambda r: r["at"], reverse=True)

    async def letters_of_run(self, municipality: str, run: str) -> list[Doc]:
        """Return the printed letters' contents of a run, in the order of their deliveries."""
        ids = [
            d["_id"]
            async for d in self.deliveries.find(
                {"municipality": municipality, "status": "letter", "letter_run": run}, {"_id": 1}
            ).sort("_id", ASCENDING)
        ]
        contents = {c["_id"]: c["content"] async for c in self.contents.find({"_id": {"$in": ids}})}
        return [contents[i] for i in ids if i in contents]

    async def content(self, delivery_id: str) -> Doc | None:
        """Return the rendered content of a delivery (subject, text, html), or None."""
        doc = await self.contents.find_one({"_id": delivery_id})
        return doc["content"] if doc else None

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
        """Return deliveries to work on (``_id``, ``status``): claims with an expired lease, then queued and due."""
        fields = {"_id": 1, "status": 1, "claim": 1}
        stale = (
            await self.deliveries.find({"status": "sending", "lease_until": {"$lte": now}}, fields)
            .limit(limit)
            .to_list(None)
        )
        if len(stale) >= limit:
            return stale  # (a limit of 0 would mean none)
        due = (
            await self.deliveries.find({"status": "queued", "not_before": {"$lte": now}}, fields)
            .sort("not_before", ASCENDING)
            .limit(limit - len(stale))
            .to_list(None)
        )
        return stale + due

    async def claim(self, due: Sequence[Doc], token: str, now: datetime, lease_until: datetime) -> list[Doc]:
        """Claim those of ``due`` no other worker has (-> ``sending``, ``claim`` = ``token``); return them.

        Each document is claimed at most once: the update re-checks that it is still queued and due
        (or claimed with an expired lease), atomically per document.
        """
        claim = {"$set": {"status": "sending", "claim": token, "lease_until": lease_until, "updated_at": now}}
        queued = [d["_id"] for d in due if d["status"] == "queued"]
        stale = [d["_id"] for d in due if d["status"] == "sending"]
        if queued:
            await self.deliveries.update_many(
                {"_id": {"$in": queued}, "status": "queued", "not_before": {"$lte": now}}, claim
            )
        if stale:
            # A claim whose lease ran out: its worker died (or hangs) between the send and the log update.
            await self.deliveries.update_many(
                {"_id": {"$in": stale}, "status": "sending", "lease_until": {"$lte": now}}, claim
            )
        return await self.deliveries.find({"claim": token, "status": "sending"}).to_list(None)

    async def extend_claim(self, token: str, now: datetime, lease_until: datetime) -> int:
        """Move the lease of every delivery still claimed with ``token``; return how many."""
        result = await self.deliveries.update_many(
            {"claim": token, "status": "sending"}, {"$set": {"lease_until": lease_until, "updated_at": now}}
        )
        return result.modified_count

    async def journal_sent(
        self,
        token: str,
        journal_id: str,
        answers: dict[str, str],
        records: Sequence[OutgoingRecord],
        contents: Sequence[Doc],
        now: datetime,
    ) -> None:
        """Write down that the messages ``answers`` (delivery id -> answer) of claim ``token`` were accepted.

        Two inserts whatever their number: the contents, then the journal entry with the answers
        and the ``delivery.sent`` facts (its outbox). From this write on they count as sent: the
        log says so after :meth:`mark_sent`, or after :meth:`recover` if the process died first.
        """
        if not answers:
            return
        await insert_new(self.contents, contents)
        await self.drop_contents_of_erased(contents)
        journal: Doc = {"_id": journal_id, "claim": token, "created_at": now, "answers": answers}
        await insert_one_new(self.sends, {**journal, **outbox_fields(records)})

    async def mark_sent(self, token: str, ids: Sequence[str], now: datetime) -> int:
        """Log the journaled deliveries ``ids`` of claim ``token`` as sent (one update); return how many."""
        if not ids:
            return 0
        result = await self.deliveries.update_many(
            {"_id": {"$in": list(ids)}, "status": "sending", "claim": token},
            {
                "$set": {"status": "sent", "sent_at": now, "updated_at": now},
                "$inc": {"attempts": 1},
                "$unset": {"lease_until": "", "answer": ""},
            },
        )
        return result.modified_count

    async def recover(self, stale: Sequence[Doc], now: datetime) -> int:
        """Log as sent those expired claims the journal lists as accepted (their worker died before); return how many.

        ``stale`` are deliveries ``sending`` with an expired lease, with their ``claim``.
        """
        recovered = 0
        for token in sorted({d["claim"] for d in stale if d.get("claim")}):
            entries = await self.sends.find({"claim": token}, {"answers": 1, "created_at": 1}).to_list(None)
            accepted = {i for e in entries for i in e.get("answers") or {}}
            ids = [d["_id"] for d in stale if d.get("claim") == token and d["_id"] in accepted]
            recovered += await self.mark_sent(token, ids, now)
        return recovered

    async def finish_each(
        self, token: str, updates: Sequence[tuple[str, Doc, Sequence[OutgoingRecord]]], contents: Sequence[Doc]
    ) -> int:
        """Apply each (delivery id, update, facts) if the claim ``token`` still holds; return how many applied."""
        await insert_new(self.contents, contents)
        await self.drop_contents_of_erased(contents)
        ops = [
            UpdateOne({"_id": delivery_id, "status": "sending", "claim": token}, with_outbox(update, records))
            for delivery_id, update, records in updates
        ]
        return await bulk_write(self.deliveries, ops, ordered=False) if ops else 0

    async def release(self, token: str, ids: Sequence[str], now: datetime) -> int:
        """Put claimed deliveries back to ``queued`` without an attempt (their lease would run out); return how many."""
        if not ids:
            return 0
        result = await self.deliveries.update_many(
            {"_id": {"$in": list(ids)}, "status": "sending", "claim": token},
            {"$set": {"status": "queued", "updated_at": now}, "$unset": {"lease_until": "", "claim": ""}},
        )
        return result.modified_count

    async def with_answers(self, docs: list[Doc]) -> list[Doc]:
        """Return ``docs`` with the server's answer of sent deliveries filled in from the journal."""
        tokens = sorted({d["claim"] for d in docs if d.get("status") == "sent" and d.get("claim")})
        if not tokens:
            return docs
        answers: dict[str, str] = {}
        async for entry in self.sends.find({"claim": {"$in": tokens}}, {"answers": 1}):
            answers.update(entry.get("answers") or {})
        for doc in docs:
            if doc.get("status") == "sent" and doc["_id"] in answers:
                doc["answer"] = answers[doc["_id"]]
        return docs

    async def delivery(self, municipality: str, delivery_id: str) -> Doc | None:
        """Return one delivery of a municipality."""
        doc = await self.deliveries.find_one({"_id": delivery_id, "municipality": municipality})
        return (await self.with_answers([doc]))[0] if doc else None

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
        docs = await self.deliveries.find(query).sort("created_at", DESCENDING).skip(skip).limit(limit).to_list(None)
        return await self.with_answers(docs)

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

    async def get_profile(self, municipality: str) -> Doc | None:
        """Return a municipality's profile as the registry published it, or None."""
        return await self.municipalities.find_one({"_id": municipality})

    async def put_profile_if_newer(self, profile: Doc) -> bool:
        """Store a municipality's profile unless a newer revision is stored; return whether it was stored."""
        municipality, revision = profile["ags"], profile["revision"]
        if await insert_one_new(self.municipalities, {"_id": municipality, **profile}):
            return True
        result = await self.municipalities.replace_one(
            {"_id": municipality, "revision": {"$lt": revision}}, {"_id": municipality, **profile}
        )
        return result.modified_count == 1

    async def put_branding(self, municipality: str, fields: Doc, now: datetime) -> None:
        """Store a municipality's branding."""
        await self.branding.replace_one(
            {"_id": municipality}, {"_id": municipality, **fields, "updated_at": now}, upsert=True
        )

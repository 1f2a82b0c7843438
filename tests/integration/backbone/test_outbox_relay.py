"""The relay empties an outbox only of what it published, also when writers append while it publishes.

Real store; the publisher records what it was given (Kafka delivery itself is proven by the
other backbone tests). A writer appends to (or replaces) some outboxes between the relay's read
and its clean-up: those entries must stay pending and go out in the next round, each exactly
once; so must the entries of writers running concurrently with a relay that drains in a loop.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.messaging.outbox import OUTBOX, PENDING, OutboxRelay, outbox_fields, with_outbox

pytestmark = pytest.mark.integration


def _record(n: str) -> OutgoingRecord:
    return OutgoingRecord(id=n, topic="t", key=n, value=b'{"n": "%s"}' % n.encode(), headers={}, type="test")


class _AppendingPublisher:
    """Records what it sends; on the first call, a writer appends to some documents meanwhile."""

    def __init__(self, coll: Any, targets: Sequence[str]) -> None:
        self.sent: list[str] = []
        self._coll = coll
        self._targets = list(targets)

    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        self.sent.extend(r.id for r in records)
        targets, self._targets = self._targets, []  # the relay may publish its next chunk meanwhile
        for doc_id in targets:
            await self._coll.update_one({"_id": doc_id}, with_outbox({"$inc": {"v": 1}}, [_record(f"late-{doc_id}")]))


async def test_entries_appended_during_a_publish_stay_pending_and_go_out_once(fresh_db: Any) -> None:
    """300 documents, 20 of them appended to while the relay publishes: every entry out exactly once."""
    coll = fresh_db["aggregates"]
    ids = [f"a{i:04d}" for i in range(300)]
    await coll.insert_many([{"_id": i, "v": 0, **outbox_fields([_record(f"{i}-1"), _record(f"{i}-2")])} for i in ids])
    late = ids[::15]
    publisher = _AppendingPublisher(coll, late)
    relay = OutboxRelay(collections=[coll], publisher=publisher, batch_size=500)  # type: ignore[arg-type]

    await relay.drain()
    counts = Counter(publisher.sent)
    assert {f"{i}-{n}" for i in ids for n in (1, 2)} <= set(counts), "every entry that was there went out"
    assert set(counts.values()) == {1}
    # The relay reads chunk by chunk while it publishes: a late entry is either still pending, alone
    # in its outbox (read before it was appended: FerretDB serves the read from one snapshot), or
    # went out in this round (read after it: MongoDB's getMore may see it). Never both, never lost.
    still = await coll.find({PENDING: True}).to_list(None)
    assert all([e["id"] for e in d[OUTBOX]] == [f"late-{d['_id']}"] for d in still)
    out_now = {c.removeprefix("late-") for c in counts if c.startswith("late-")}
    assert not out_now & {d["_id"] for d in still}
    assert out_now | {d["_id"] for d in still} == set(late)

    await relay.drain()
    counts = Counter(publisher.sent)
    assert len(counts) == 600 + len(late)
    assert set(counts.values()) == {1}, "no entry published twice"
    assert await coll.count_documents({PENDING: True}) == 0
    assert await coll.count_documents({"_outbox.0": {"$exists": True}}) == 0
    assert {d["v"] for d in await coll.find({"_id": {"$in": late}}).to_list(None)} == {1}


async def test_a_flag_left_without_entries_is_lowered(fresh_db: Any) -> None:
    """A document flagged pending with an empty or missing outbox (an older relay's crash) is cleared."""
    coll = fresh_db["aggregates"]
    await coll.insert_many([{"_id": "empty", OUTBOX: [], PENDING: True}, {"_id": "missing", PENDING: True}])
    publisher = _AppendingPublisher(coll, [])
    relay = OutboxRelay(collections=[coll], publisher=publisher)  # type: ignore[arg-type]
    await relay.drain()
    assert publisher.sent == []
    assert await coll.count_documents({PENDING: True}) == 0


class _ReplacingPublisher:
    """Records what it sends; on the first call, a writer replaces some outboxes (as an erasure does)."""

    def __init__(self, coll: Any, targets: Sequence[str]) -> None:
        self.sent: list[str] = []
        self._coll = coll
        self._targets = list(targets)

    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        self.sent.extend(r.id for r in records)
        targets, self._targets = self._targets, []  # the relay may publish its next chunk meanwhile
        for doc_id in targets:
            entry = _record(f"erased-{doc_id}").to_document()
            await self._coll.update_one({"_id": doc_id}, {"$set": {OUTBOX: [entry], PENDING: True}})


async def test_an_outbox_replaced_during_a_publish_keeps_its_new_entry(fresh_db: Any) -> None:
    """A writer that sets the outbox outright (not through with_outbox) meanwhile: its entry stays and goes out."""
    coll = fresh_db["aggregates"]
    ids = [f"r{i:03d}" for i in range(100)]
    await coll.insert_many([{"_id": i, **outbox_fields([_record(f"{i}-1")])} for i in ids])
    replaced = ids[::7]
    publisher = _ReplacingPublisher(coll, replaced)
    relay = OutboxRelay(collections=[coll], publisher=publisher)  # type: ignore[arg-type]

    await relay.drain()
    still = await coll.find({PENDING: True}).to_list(None)
    # Replaced after the relay read it (always on FerretDB, which reads from one snapshot): pending
    # with the new entry. Replaced before (MongoDB's getMore may read it after): out already.
    assert {d["_id"] for d in still} <= set(replaced)
    await relay.drain()
    counts = Counter(publisher.sent)
    assert {f"erased-{i}" for i in replaced} <= set(counts), "every new entry went out"
    assert {f"{i}-1" for i in ids if i not in replaced} <= set(counts)
    assert set(counts.values()) == {1}
    assert await coll.count_documents({PENDING: True}) == 0


class _RecordingPublisher:
    """Records what it sends and yields to the writers between batches."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        self.sent.extend(r.id for r in records)
        await asyncio.sleep(0.005)


async def test_concurrent_writers_and_relay_publish_every_entry_once(fresh_db: Any) -> None:
    """Writers append to random documents while the relay drains over and over: each entry goes out once."""
    coll = fresh_db["aggregates"]
    ids = [f"c{i:03d}" for i in range(120)]
    await coll.insert_many([{"_id": i, "v": 0, **outbox_fields([_record(f"{i}-0")])} for i in ids])
    publisher = _RecordingPublisher()
    relay = OutboxRelay(collections=[coll], publisher=publisher, batch_size=40)  # type: ignore[arg-type]
    written = [f"{i}-0" for i in ids]
    rng = random.Random(16)

    async def writer(w: int) -> None:
        for n in range(60):
            doc_id = rng.choice(ids)
            entry = f"{doc_id}-w{w}-{n}"
            await coll.update_one({"_id": doc_id}, with_outbox({"$inc": {"v": 1}}, [_record(entry)]))
            written.append(entry)

    writers = asyncio.gather(*(writer(w) for w in range(4)))
    while not writers.done():
        await relay.drain()
    await writers
    await relay.drain()

    counts = Counter(publisher.sent)
    assert set(counts) == set(written), "every entry published"
    assert set(counts.values()) == {1}, "no entry published twice"
    assert await coll.count_documents({PENDING: True}) == 0
    assert sum(d["v"] for d in await coll.find({}).to_list(None)) == 240, "the writers' own updates all landed"


async def test_a_failing_collection_does_not_hold_back_the_others(fresh_db: Any) -> None:
    """An outbox the relay cannot publish (a broken entry) fails its drain, but the other collections go out."""
    broken, healthy = fresh_db["broken"], fresh_db["healthy"]
    await broken.insert_one({"_id": "b1", OUTBOX: [{"id": "no-topic"}], PENDING: True})
    await healthy.insert_many([{"_id": f"h{i}", **outbox_fields([_record(f"h{i}")])} for i in range(10)])
    publisher = _RecordingPublisher()
    relay = OutboxRelay(collections=[broken, healthy], publisher=publisher)  # type: ignore[arg-type]

    with pytest.raises(KeyError):
        await relay.drain()
    assert sorted(publisher.sent) == sorted(f"h{i}" for i in range(10))
    assert await healthy.count_documents({PENDING: True}) == 0
    assert await broken.count_documents({PENDING: True}) == 1, "the broken entry stays where it is"


class _RefusingPublisher:
    """A broker that refuses every record (for example, records too large for it)."""

    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        raise RuntimeError("refused")


async def test_a_relay_that_cannot_publish_reports_a_stall_and_the_entries_age(fresh_db: Any) -> None:
    """Pending entries that never go out: the relay shows no progress and the oldest entry's age; an idle relay never stalls."""
    from datetime import UTC, datetime

    from prometheus_client import REGISTRY

    from engagiert.shared.contracts import MemberErased
    from engagiert.shared.envelope import make_record

    coll = fresh_db["stuck"]
    relay = OutboxRelay(collections=[coll], publisher=_RefusingPublisher(), poll_seconds=0.05)  # type: ignore[arg-type]
    await relay.start()
    try:
        await asyncio.sleep(0.3)
        assert not relay.stalled(0.1), "an idle relay with nothing pending is not stalled"
        erased = MemberErased(member_id="m-stuck", municipality="05774032", erased_at=datetime.now(UTC))
        record = make_record(erased, source="/engagiert/test")
        await coll.insert_one({"_id": "x", **outbox_fields([record])})
        relay.notify()
        await asyncio.sleep(1.0)
        assert relay.stalled(0.5)
        age = REGISTRY.get_sample_value("engagiert_outbox_oldest_pending_seconds", {"collection": coll.name})
        assert age is not None
        assert age >= 0.5
        await coll.update_one({"_id": "x"}, {"$set": {OUTBOX: [], PENDING: False}})
        await asyncio.sleep(1.0)
        assert not relay.stalled(0.5), "once nothing is pending, the relay is not stalled"
    finally:
        await relay.stop()

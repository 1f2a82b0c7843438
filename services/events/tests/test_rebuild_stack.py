"""Proof on the real stack: `python -m engagiert.events.rebuild` replays both registry topics into the read model."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engagiert.events.config import EventsSettings
from engagiert.events.rebuild import rebuild
from engagiert.events.repository import MEMBERS
from engagiert.shared.contracts import (
    Engagement,
    HoursRecorded,
    HoursTotals,
    MemberErased,
    MemberRegistered,
    MemberSnapshot,
    MemberUpdated,
)
from engagiert.shared.envelope import make_record
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import StackEndpoints, create_test_topics, produce_records
from engagiert.shared.testing.stack import REPO_ROOT

pytestmark = pytest.mark.integration
SOURCE = "/test/registry"
MEMBERS_N = 20


def _snapshot(member_id: str, ags: str, revision: int, given: str) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=member_id,
        municipality=ags,
        revision=revision,
        given_name=given,
        family_name="Testperson",
        date_of_birth=date(1985, 3, 9),
        engagements=[Engagement(engagement_id=f"{member_id}-e", field="Kultur", since=date(2019, 4, 1))],
    )


async def test_rebuild_replays_both_topics_from_the_beginning_into_an_emptied_read_model(
    stack: StackEndpoints, unique: Callable[[str], str]
) -> None:
    """The command clears the read model, replays every record once and prints the counts; repeating changes nothing."""
    bootstrap = stack.kafka_bootstrap_servers
    members_topic = await create_test_topics(bootstrap, "test.registry.members")
    engagement_topic = await create_test_topics(bootstrap, "test.registry.engagement")
    ags = f"99{random.randrange(10**6):06d}"
    ids = [unique(f"rb{i:02d}") for i in range(MEMBERS_N)]
    today = datetime.now(UTC).date()
    member_records: list[Any] = [
        make_record(MemberRegistered(member=_snapshot(m, ags, 1, "Erstname")), source=SOURCE) for m in ids
    ]
    member_records += [
        make_record(MemberUpdated(member=_snapshot(ids[0], ags, 2, "Neuname")), source=SOURCE),
        make_record(MemberErased(member_id=ids[2], municipality=ags, erased_at=datetime.now(UTC)), source=SOURCE),
        (members_topic, b"x", b"not json at all", []),
    ]

    def hours(member_id: str) -> HoursRecorded:
        return HoursRecorded(
            entry_id=f"{member_id}-h",
            member_id=member_id,
            municipality=ags,
            hours=12,
            date_from=today - timedelta(days=10),
            reported_by="test",
            totals=HoursTotals(hours_last_12_months=12),
        )

    engagement_records = [make_record(hours(m), source=SOURCE) for m in ids]
    engagement_records.append(make_record(hours(ids[0]), source=SOURCE))  # the same entry again, a new event id
    await produce_records(bootstrap, member_records, topic=members_topic)
    await produce_records(bootstrap, engagement_records, topic=engagement_topic)

    database = unique("test_events_rebuild").replace("-", "_")
    client = create_client(stack.mongodb_url)
    db = client[database]
    try:
        await db[MEMBERS].insert_one({"_id": "ghost", "municipality": ags, "given_name": "Nichtmehrda"})
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MONGODB_URL": stack.mongodb_url,
            "EVENTS_MONGODB_DATABASE": database,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "engagiert.events.rebuild",
            "--members-topic",
            members_topic,
            "--engagement-topic",
            engagement_topic,
            env=env,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-3000:]
        result = json.loads(out.decode().strip().splitlines()[-1])
        print("rebuild:", result)
        assert result["cleared"] == 1
        assert result["records_read"] == {members_topic: MEMBERS_N + 3, engagement_topic: MEMBERS_N + 1}
        assert result["events_applied"] == MEMBERS_N + 2 + MEMBERS_N + 1
        assert result["records_skipped"] == {"not-json": 1}
        assert (result["members"], result["erased_members"]) == (MEMBERS_N, 1)
        assert result["truncated_partitions"] == []

        docs = {d["_id"]: d for d in await db[MEMBERS].find({}).to_list(None)}
        assert set(docs) == set(ids)
        assert (docs[ids[0]]["given_name"], docs[ids[0]]["revision"]) == ("Neuname", 2)
        day = (today - timedelta(days=10)).isoformat()
        assert docs[ids[0]]["hours_by_day"] == {day: 12}, "the entry counted once"
        assert docs[ids[1]]["given_name"] == "Erstname"
        assert docs[ids[1]]["hours_by_day"] == {day: 12}
        assert docs[ids[2]]["erased"] is True
        assert "given_name" not in docs[ids[2]]
        assert "hours_by_day" not in docs[ids[2]]

        # Replaying again over the result (no clearing) adds nothing: the writes are idempotent.
        settings = EventsSettings(
            kafka_bootstrap_servers=bootstrap, mongodb_url=stack.mongodb_url, mongodb_database=database
        )
        again = await rebuild(settings, clear=False, members_topic=members_topic, engagement_topic=engagement_topic)
        assert (again["cleared"], again["members"], again["erased_members"]) == (0, MEMBERS_N, 1)
        assert again["records_read"] == result["records_read"]
        assert [d["hours_by_day"] for d in await db[MEMBERS].find({"_id": ids[0]}).to_list(None)] == [{day: 12}]
    finally:
        await client.drop_database(database)
        await client.close()

"""The outbox loses no event when the writer dies between the state write and the publish."""

from __future__ import annotations

import signal

import pytest

from engagiert.shared.envelope import parse_record
from engagiert.shared.testing import StackEndpoints, consume_until

from .conftest import start_proc, wait_for_line

pytestmark = pytest.mark.integration


async def test_sigkill_between_state_write_and_publish_loses_no_event(
    stack: StackEndpoints, kafka_topic, fresh_db
) -> None:
    """A writer SIGKILLed after its state writes publishes nothing; a relay started later publishes all."""
    topic = await kafka_topic("test.outbox")
    common = [
        "--bootstrap",
        stack.kafka_bootstrap_servers,
        "--mongodb-url",
        stack.mongodb_url,
        "--db",
        fresh_db.name,
    ]
    writer = start_proc("writer", *common, "--topic", topic, "--count", "300", "--die-before-publish")
    wait_for_line(writer, "written")
    assert writer.wait(timeout=30) == -signal.SIGKILL

    pending = await fresh_db["members"].count_documents({"_outbox_pending": True})
    assert pending == 300, "every state write carries its event in the same document"
    nothing = await consume_until(stack.kafka_bootstrap_servers, topic, lambda r: len(r) > 0, timeout=3)
    assert nothing == [], "the killed writer published nothing"

    relay = start_proc("writer", *common, "--topic", topic, "--count", "0")
    wait_for_line(relay, "published 300")
    assert relay.wait(timeout=30) == 0

    records = await consume_until(stack.kafka_bootstrap_servers, topic, lambda r: len(r) >= 300, timeout=30)
    members = {parse_record(value=r.value, headers=r.headers).data.member_id for r in records}
    assert len(members) == 300
    assert await fresh_db["members"].count_documents({"_outbox_pending": True}) == 0
    assert await fresh_db["members"].count_documents({"_outbox.0": {"$exists": True}}) == 0


async def test_relay_killed_midway_publishes_the_rest_after_restart(
    stack: StackEndpoints, kafka_topic, fresh_db
) -> None:
    """A relay SIGKILLed while publishing leaves the unpublished entries pending; a restart publishes them."""
    topic = await kafka_topic("test.outbox")
    common = [
        "--bootstrap",
        stack.kafka_bootstrap_servers,
        "--mongodb-url",
        stack.mongodb_url,
        "--db",
        fresh_db.name,
    ]
    writer = start_proc("writer", *common, "--topic", topic, "--count", "3000", "--batch", "50")
    wait_for_line(writer, "written")
    # Give it a moment to publish some batches, then kill it mid-stream.
    first = await consume_until(stack.kafka_bootstrap_servers, topic, lambda r: len(r) >= 100, timeout=30)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert len(first) >= 100

    relay = start_proc("writer", *common, "--topic", topic, "--count", "0")
    # Up to 3,000 documents in one drain: on a FerretDB without update-batch.patch each cleared
    # document is a transaction of its own, over a minute on a busy machine.
    wait_for_line(relay, "published", timeout=240)
    assert relay.wait(timeout=60) == 0

    records = await consume_until(stack.kafka_bootstrap_servers, topic, lambda r: len(r) >= 3000, timeout=60)
    members = {parse_record(value=r.value, headers=r.headers).data.member_id for r in records}
    assert len(members) == 3000, "every state change's event was published at least once"
    assert await fresh_db["members"].count_documents({"_outbox_pending": True}) == 0

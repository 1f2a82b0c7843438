"""Proves trust at the boundary on the real broker: a connected system acts only within its grant.

The registry runs as a process (its own database and consumer groups); a system is connected
for Bielefeld with the operator command's code (a SCRAM user, ACLs, its topic, the grant in the
registry's database) and then produces with its own credentials as any external system would,
with a plain aiokafka producer. Its commands for Paderborn are dead-lettered as
``not-authorised`` and change nothing over HTTP; its erasure confirmation is refused by the
broker; its Bielefeld commands work. A producer without credentials, or with a wrong password,
gets nothing onto the topic; a revoked system can no longer write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError, UnknownTopicOrPartitionError

from engagiert.registry.config import RegistrySettings
from engagiert.registry.systems import connect, list_systems, revoke
from engagiert.shared import topics
from engagiert.shared.contracts import ConfirmErasure, ExternalRef, RegisterMember, ReportHours
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.messaging.dlq import H_ERROR, H_GROUP, H_REASON
from engagiert.shared.settings import KafkaClientSettings, aiokafka_options
from engagiert.shared.testing import (
    ServiceProcess,
    StackEndpoints,
    auth_header,
    consume_until,
    create_test_topics,
    eventually,
    fresh_registry,
)
from engagiert.shared.testing.probes import drop_databases

pytestmark = pytest.mark.integration

BIELEFELD, PADERBORN = "05711000", "05774032"
ADMIN = auth_header(["*"], "network-admin")
STAFF = auth_header([BIELEFELD, PADERBORN], "staff")
SOURCE = "urn:vereinsverwaltung:bielefeld"


@pytest.fixture(scope="module")
def trust(stack: StackEndpoints) -> Iterator[dict[str, Any]]:
    """Run the registry as a process that consumes only this module's systems; connect one for Bielefeld."""
    if (KafkaClientSettings().kafka_security_protocol or "PLAINTEXT") == "PLAINTEXT":
        pytest.skip("the stack's broker does not authenticate clients (KAFKA_SECURITY_PROTOCOL is PLAINTEXT)")
    run = uuid.uuid4().hex[:8]
    db, group = f"trust_registry_{run}", f"trust-registry-{run}"
    isolation = asyncio.run(fresh_registry(stack.kafka_bootstrap_servers, group=group, run=run))
    # The stack's own events and notifications (after `make up`) confirm every erasure they see on
    # the shared member topic, this registry's too: it reads confirmations from a topic of its own,
    # which nobody writes, so the forged confirmation's refusal is all the test sees.
    confirmations = asyncio.run(create_test_topics(stack.kafka_bootstrap_servers, "test.trust-confirmations"))
    env = {
        **stack.env(),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "REGISTRY_MONGODB_DATABASE": db,
        "REGISTRY_CONSUMER_GROUP": group,
        **isolation,  # only this module's systems: other tests' systems are not this registry's business
        "REGISTRY_CONFIRMATIONS_TOPIC": confirmations,
        "REGISTRY_KAFKA_METADATA_MAX_AGE_MS": "2000",
    }
    proc = ServiceProcess("engagiert.registry.main", env=env).start(wait_ready=90)
    settings = RegistrySettings(mongodb_url=stack.mongodb_url, mongodb_database=db)
    try:
        client = httpx.Client(base_url=proc.url, timeout=30)
        for ags, name in ((BIELEFELD, "Stadt Bielefeld"), (PADERBORN, "Stadt Paderborn")):
            r = client.post("/v1/municipalities", headers=ADMIN, json={"ags": ags, "name": name, "kind": "Stadt"})
            assert r.status_code == 201, r.text
        name = f"test-{run}-bielefeld"
        info = connect(
            name=name,
            municipalities=[BIELEFELD],
            permissions=["register-members", "report-hours"],
            settings=settings,
            kafka=KafkaClientSettings(),
            partitions=1,
        )
        yield {"run": run, "url": proc.url, "group": group, "info": info, "name": name, "settings": settings}
    finally:
        proc.stop()
        asyncio.run(drop_databases(stack.mongodb_url, [db]))


def _producer(info: dict[str, Any], *, password: str | None = None, protocol: str | None = None) -> AIOKafkaProducer:
    """Return a producer configured as the connected system configures its own (from what connect printed)."""
    options: dict[str, Any] = {
        "security_protocol": protocol or info["security_protocol"],
        "sasl_mechanism": info["sasl_mechanism"],
        "sasl_plain_username": info["sasl_username"],
        "sasl_plain_password": info["sasl_password"] if password is None else password,
    }
    if options["security_protocol"] == "PLAINTEXT":
        options = {"security_protocol": "PLAINTEXT"}
    return AIOKafkaProducer(bootstrap_servers=info["bootstrap_servers"], acks="all", request_timeout_ms=8000, **options)


async def _send(producer: AIOKafkaProducer, records: list[OutgoingRecord], *, topic: str) -> None:
    for rec in records:
        await producer.send_and_wait(topic, rec.value, key=rec.key.encode(), headers=list(rec.headers.items()))


async def _end_offset(stack: StackEndpoints, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap_servers, **aiokafka_options())
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, 0)])
    finally:
        await consumer.stop()
    return sum(ends.values())


async def _start_and_send(producer: AIOKafkaProducer, topic: str) -> None:
    await producer.start()
    await _send(producer, [make_record(_register(BIELEFELD, "intruder", "Ida"), source=SOURCE)], topic=topic)


def _register(ags: str, ref: str, given: str) -> RegisterMember:
    return RegisterMember(
        municipality=ags,
        external_ref=ExternalRef(system="vereinsverwaltung", id=ref),
        given_name=given,
        family_name="Vertrauen",
        email=f"{given.lower()}.{ref}@trust.example.org",
    )


async def test_a_bielefeld_system_acts_for_bielefeld_only(stack: StackEndpoints, trust: dict[str, Any]) -> None:
    """Commands for Paderborn and an erasure confirmation are refused with reasons; Bielefeld's work."""
    info, run = trust["info"], trust["run"]
    topic = info["topic"]
    assert topic == f"registry.inbound.{trust['name']}.v1"
    assert info["sasl_username"] == f"system-{trust['name']}"
    assert len(info["sasl_password"]) >= 40
    reg = httpx.AsyncClient(base_url=trust["url"], timeout=30)

    # Staff register a Paderborn member (the target of the forged hours) and erase another one.
    pb_member = (await reg.post(f"/v1/municipalities/{PADERBORN}/members", headers=STAFF, json={
        "given_name": "Paula", "family_name": f"Paderborn{run}", "contact": {"email": f"paula.{run}@trust.example.org"},
    })).json()  # fmt: skip
    erased = (await reg.post(f"/v1/municipalities/{PADERBORN}/members", headers=STAFF, json={
        "given_name": "Erik", "family_name": f"Erased{run}",
    })).json()  # fmt: skip
    assert (
        await reg.delete(f"/v1/municipalities/{PADERBORN}/members/{erased['member_id']}", headers=STAFF)
    ).status_code == 202

    producer = _producer(info)
    await producer.start()
    try:
        # 1. Out of its grant: a Paderborn registration and hours for a Paderborn member.
        await _send(producer, [
            make_record(_register(PADERBORN, f"pb-{run}", "Petra"), source=SOURCE, event_id=f"{run}-pb-register"),
            make_record(ReportHours(municipality=PADERBORN, member_id=pb_member["member_id"], hours=99,
                                    date_from=date(2026, 5, 1)), source=SOURCE, event_id=f"{run}-pb-hours"),
        ], topic=topic)  # fmt: skip
        # 2. A forged erasure confirmation: the broker refuses the write to the confirmations topic ...
        confirm = make_record(
            ConfirmErasure(member_id=erased["member_id"], municipality=PADERBORN, service="events",
                           erased_at=datetime.now(UTC)), source=SOURCE, event_id=f"{run}-confirm")  # fmt: skip
        with pytest.raises(KafkaError) as refused:
            await _send(producer, [confirm], topic=topics.REGISTRY_ERASURE_CONFIRMATIONS)
        assert "Authorization" in type(refused.value).__name__, repr(refused.value)
        # ... and on its own topic it is no command a system may send.
        await _send(producer, [confirm], topic=topic)
        # 3. Within its grant: a Bielefeld registration, then hours for that member.
        await _send(producer, [make_record(_register(BIELEFELD, f"bi-{run}", "Bert"), source=SOURCE,
                                           event_id=f"{run}-bi-register")], topic=topic)  # fmt: skip

        async def bielefeld_member() -> dict[str, Any] | None:
            items = (await reg.get(f"/v1/municipalities/{BIELEFELD}/members", headers=STAFF)).json()["items"]
            return items[0] if items else None

        bert = await eventually(bielefeld_member, timeout=90, what="the Bielefeld registration to apply")
        await _send(producer, [make_record(ReportHours(
            municipality=BIELEFELD, external_ref=ExternalRef(system="vereinsverwaltung", id=f"bi-{run}"), hours=12,
            date_from=date(2026, 5, 2)), source=SOURCE, event_id=f"{run}-bi-hours")], topic=topic)  # fmt: skip

        async def bert_has_hours() -> bool:
            got = (await reg.get(f"/v1/municipalities/{BIELEFELD}/members/{bert['member_id']}", headers=STAFF)).json()
            return bool(got["totals"]["hours_by_year"].get("2026") == 12)

        await eventually(bert_has_hours, timeout=60, what="the Bielefeld hours to apply")
    finally:
        await producer.stop()

    # The refusals, each with its reason, in the topic's dead letters (this registry's group only).
    def ours(recs: list[Any]) -> list[dict[str, str]]:
        found = [{k: v.decode() for k, v in r.headers} for r in recs]
        return [h for h in found if h.get(H_GROUP) == f"{trust['group']}-systems"]

    dead = ours(await consume_until(stack.kafka_bootstrap_servers, topics.dlq(topic), lambda rs: len(ours(rs)) >= 3))
    reasons = sorted(h[H_REASON] for h in dead)
    assert reasons == ["not-authorised", "not-authorised", "wrong-topic"], dead
    errors = " | ".join(h[H_ERROR] for h in dead)
    assert f"may not act for municipality {PADERBORN}" in errors

    # No effect over HTTP: no Paderborn member from the system, Paula has no hours, the erasure waits.
    pb_items = (await reg.get(f"/v1/municipalities/{PADERBORN}/members", headers=STAFF)).json()["items"]
    assert [m.get("given_name") for m in pb_items if m.get("given_name")] == ["Paula"], pb_items
    paula = (await reg.get(f"/v1/municipalities/{PADERBORN}/members/{pb_member['member_id']}", headers=STAFF)).json()
    assert not paula["totals"]["hours_by_year"], paula["totals"]
    status = (
        await reg.get(f"/v1/municipalities/{PADERBORN}/members/{erased['member_id']}/erasure", headers=STAFF)
    ).json()
    assert status["complete"] is False, status
    assert not status["confirmations"]["events"], status

    # Staff see which systems may act for their municipality, never a secret, nothing of others'.
    listed = (await reg.get(f"/v1/municipalities/{BIELEFELD}/systems", headers=STAFF)).json()
    assert [(x["name"], x["status"], x["permissions"]) for x in listed] == [
        (trust["name"], "connected", ["register-members", "report-hours"])
    ]
    assert info["sasl_password"] not in json.dumps(listed)
    assert (await reg.get(f"/v1/municipalities/{PADERBORN}/systems", headers=STAFF)).json() == []


async def test_no_credentials_and_wrong_password_achieve_nothing(stack: StackEndpoints, trust: dict[str, Any]) -> None:
    """A plaintext producer and one with a wrong password cannot connect, so nothing reaches the topic."""
    info = trust["info"]
    before = await _end_offset(stack, info["topic"])
    for producer in (_producer(info, protocol="PLAINTEXT"), _producer(info, password="not-the-secret")):
        with pytest.raises((KafkaError, TimeoutError)):
            await asyncio.wait_for(_start_and_send(producer, info["topic"]), timeout=30)
        with contextlib.suppress(Exception):
            await producer.stop()
    assert await _end_offset(stack, info["topic"]) == before


async def test_a_revoked_system_can_no_longer_write(stack: StackEndpoints, trust: dict[str, Any]) -> None:
    """After revoke the open connection's writes are refused, and the credentials no longer sign in."""
    info = trust["info"]
    connected = _producer(info)
    await connected.start()
    try:
        await asyncio.to_thread(revoke, name=trust["name"], settings=trust["settings"], kafka=KafkaClientSettings())
        grants = await asyncio.to_thread(list_systems, settings=trust["settings"])
        assert [g["status"] for g in grants if g["name"] == trust["name"]] == ["revoked"]
        before = await _end_offset(stack, info["topic"])
        accepted = 0

        async def refused() -> bool:
            nonlocal accepted
            try:
                await _send(connected, [make_record(_register(BIELEFELD, "late", "Lea"), source=SOURCE)],
                            topic=info["topic"])  # fmt: skip
            except (TopicAuthorizationFailedError, UnknownTopicOrPartitionError):
                return True  # without DESCRIBE the broker does not even show the topic to the principal
            accepted += 1  # sent before the authorizer saw the deletion (the grant, revoked, still refuses it)
            return False

        # ACLs are the broker's metadata: the deletion reaches the authorizer within moments.
        await eventually(refused, timeout=30, what="the broker to refuse the revoked system's writes")
    finally:
        with contextlib.suppress(Exception):
            await connected.stop()
    fresh = _producer(info)
    with pytest.raises((KafkaError, TimeoutError)):
        await asyncio.wait_for(fresh.start(), timeout=30)
    with contextlib.suppress(Exception):
        await fresh.stop()
    assert await _end_offset(stack, info["topic"]) == before + accepted
    assert accepted <= 1, "the broker refused the revoked system's writes at once"

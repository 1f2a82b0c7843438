"""Erasure to the last byte (issue 14, part 2), on the real stack with the three services as processes.

A member with hours, an invitation (delivered e-mail), a granted Ehrenamtskarte, an applied inbound
command and a dead-lettered one carrying her e-mail is erased. Once the registry reports the
erasure complete, a raw consumer reads every topic and dead-letter topic from offset 0 and finds
none of her name, e-mail, phone, street or birth date; neither do the three databases nor the
logs; another member's dead letter is still there; rebuilds of the events and notifications read
models from a replay leave her out and rebuild everyone else as before.

The registry runs on an inbound topic of its own and reads only connected systems of its own run,
so its purge (``REGISTRY_PURGE_INBOUND_RECORDS=true``, which ``fresh_registry()`` turns off for
other tests' registries) deletes and rewrites records of its own topics only. The services'
confirmations reach it on ``registry.erasure-confirmations.v1``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from bson import json_util

from engagiert.shared import topics
from engagiert.shared.contracts import ExternalRef, RegisterMember, ReportHours
from engagiert.shared.envelope import make_record
from engagiert.shared.mongo import create_client
from engagiert.shared.settings import aiokafka_options
from engagiert.shared.testing import (
    ServiceProcess,
    StackEndpoints,
    auth_header,
    create_test_topics,
    eventually,
    fresh_registry,
    produce_records,
    skip_history,
)
from engagiert.shared.testing.stack import REPO_ROOT

pytestmark = pytest.mark.integration

SYSTEM = "urn:vereinsverwaltung:test"
CONSUMES = {
    "events": [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT],
    "notifications": [topics.NOTIFICATIONS_REQUESTS, topics.REGISTRY_MEMBERS],
}


async def _partitions(bootstrap: str, names: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([n for n in names if n in existing])
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t.get("partitions") or []]


async def _ends(bootstrap: str, names: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **aiokafka_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(await _partitions(bootstrap, names)))
    finally:
        await consumer.stop()


async def read_all(
    bootstrap: str, names: list[str], *, since: dict[TopicPartition, int] | None = None
) -> dict[str, list[Any]]:
    """Read every record of ``names`` from offset 0 (or ``since``) up to their current end, with large fetches."""
    parts = await _partitions(bootstrap, names)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **aiokafka_options(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    out: dict[str, list[Any]] = {n: [] for n in names}
    try:
        consumer.assign(parts)
        firsts = await consumer.beginning_offsets(parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(firsts[tp], (since or {}).get(tp, 0)))
        todo = {tp for tp in parts if consumer_start(firsts, since, tp) < ends[tp]}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=20_000)
            for tp, recs in batch.items():
                out[tp.topic].extend(r for r in recs if r.offset < ends[tp])
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    return out


def consumer_start(
    firsts: dict[TopicPartition, int], since: dict[TopicPartition, int] | None, tp: TopicPartition
) -> int:
    """Return where reading a partition starts."""
    return max(firsts[tp], (since or {}).get(tp, 0))


def scan_logs(own: Path, needles: dict[str, str]) -> tuple[list[Path], dict[str, dict[str, int]]]:
    """Return the log files (ours and the shared stack's) and the needles found in each."""
    files = sorted(own.glob("*.log"))
    stack_logs = Path(os.environ.get("ENGAGIERT_STACK_LOGS", REPO_ROOT / ".stack" / "logs"))
    files += sorted(stack_logs.glob("*.log")) if stack_logs.is_dir() else []
    return files, {str(p): f for p in files if (f := occurrences(p.read_bytes(), needles))}


def run_rebuild(service: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m engagiert.<service>.rebuild`` with the test's settings."""
    return subprocess.run(
        [sys.executable, "-m", f"engagiert.{service}.rebuild", *args],
        env={**os.environ, **env}, cwd=REPO_ROOT, capture_output=True, timeout=900, check=False,
    )  # fmt: skip


def raw(record: Any) -> bytes:
    """Return every byte of a record a reader sees: key, value, headers."""
    parts = [record.key or b"", record.value or b""]
    parts += [k.encode() + b"=" + (v or b"") for k, v in record.headers or []]
    return b"\x00".join(parts)


def occurrences(blob: bytes, needles: dict[str, str]) -> dict[str, int]:
    """Return how often each needle (and its JSON-escaped form) occurs in ``blob``."""
    found: dict[str, int] = {}
    for name, needle in needles.items():
        forms = {needle.encode(), json.dumps(needle)[1:-1].encode(), needle.casefold().encode()}
        count = sum(blob.count(form) for form in forms)
        if count:
            found[name] = count
    return found


@pytest.fixture(scope="module")
def platform(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run registry (own inbound topic), events and notifications as processes with databases of their own."""
    run = uuid.uuid4().hex[:8]
    bootstrap = stack.kafka_bootstrap_servers
    inbound = asyncio.run(create_test_topics(bootstrap, "test.shred-inbound"))
    logs = tmp_path_factory.mktemp("shred-logs")
    env = {**stack.env(), "ENVIRONMENT": "test", "LOG_LEVEL": "INFO"}
    for name in ("registry", "events", "notifications"):
        env[f"{name.upper()}_MONGODB_DATABASE"] = f"shred_{name}_{run}"
        env[f"{name.upper()}_CONSUMER_GROUP"] = f"shred-{name}-{run}"
        env[f"{name.upper()}_OUTBOX_POLL_SECONDS"] = "0.2"
    for name, consumed in CONSUMES.items():
        asyncio.run(skip_history(bootstrap, f"shred-{name}-{run}", consumed))
    env["REGISTRY_INBOUND_TOPIC"] = inbound
    env.update(asyncio.run(fresh_registry(bootstrap, group=f"shred-registry-{run}", run=run)))
    env["REGISTRY_PURGE_INBOUND_RECORDS"] = "true"  # its inbound topic and systems are its own
    env["REGISTRY_PURGE_POLL_SECONDS"] = "1"
    ports = {name: ServiceProcess(f"engagiert.{name}.main", env={}).port for name in CONSUMES | {"registry": []}}
    env["MEMBER_KEYS_URL"] = f"http://127.0.0.1:{ports['registry']}"
    env["EVENTS_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{ports['events']}"
    env["NOTIFICATIONS_SENDER_POLL_SECONDS"] = "0.2"
    starts = asyncio.run(
        _ends(bootstrap, [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT, topics.REGISTRY_INBOUND])
    )
    procs: dict[str, ServiceProcess] = {}
    try:
        for name in ("registry", "events", "notifications"):
            proc = ServiceProcess(f"engagiert.{name}.main", env=env, port=ports[name], log_dir=logs)
            procs[name] = proc.start(wait_ready=120)
        yield {"procs": procs, "run": run, "env": env, "inbound": inbound, "starts": starts, "logs": logs}
    finally:
        for proc in procs.values():
            proc.stop()
        asyncio.run(
            _drop([env[f"{n.upper()}_MONGODB_DATABASE"] for n in ("registry", "events", "notifications")], stack)
        )


async def _drop(names: list[str], stack: StackEndpoints) -> None:
    client = create_client(stack.mongodb_url)
    try:
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()


async def test_an_erased_member_is_gone_from_every_topic_dead_letter_database_and_log(
    platform: dict[str, Any], stack: StackEndpoints
) -> None:
    """Erase a member with hours, invitation, card, e-mail and dead letter; nothing of her is readable anywhere after."""
    procs, run, inbound = platform["procs"], platform["run"], platform["inbound"]
    bootstrap = stack.kafka_bootstrap_servers
    ags = f"99{random.randrange(10**6):06d}"
    base = f"/v1/municipalities/{ags}"
    admin, staff = auth_header(["*"], "network-admin"), auth_header([ags], "staff")
    reg = httpx.AsyncClient(base_url=procs["registry"].url, timeout=60)
    ev = httpx.AsyncClient(base_url=procs["events"].url, timeout=60)
    mail = httpx.AsyncClient(base_url=stack.mailpit_api_url, timeout=30)
    tag = run.upper()
    zora = {
        "given_name": f"Zoraida{tag}",
        "family_name": f"Quendelmeyer{tag}",
        "email": f"zora.{run}@shred.example.org",
        "phone": f"05251 {random.randrange(10**7):07d}",
        "street": f"Shredpfad {run}",
        "date_of_birth": f"19{random.randrange(30, 60)}-0{random.randrange(1, 10)}-1{random.randrange(0, 10)}",
        "external_id": f"zora-{run}",
    }
    needles = {k: v for k, v in zora.items() if k != "external_id"} | {"external_id": f"zora-{run}"}
    assert (await reg.post("/v1/municipalities", headers=admin, json={"ags": ags, "name": "Stadt Shred", "kind": "Stadt"})).status_code == 201  # fmt: skip

    def body(given: str, family: str, email: str, *, phone: str, street: str, dob: str, ref: str) -> dict[str, Any]:
        return {
            "given_name": given, "family_name": family, "date_of_birth": dob,
            "contact": {"email": email, "phone": phone,
                        "postal_address": {"street": street, "postal_code": "33100", "city": "Paderborn"}},
            "consent": {"channels": ["email"], "source": "Formular Anlaufstelle"},
            "engagements": [{"field": "Soziales", "role": "Helferin", "since": "2015-01-01"}],
            "external_refs": [{"system": "vereinsverwaltung", "id": ref}],
        }  # fmt: skip

    r = await reg.post(f"{base}/members", headers=staff, json=body(
        zora["given_name"], zora["family_name"], zora["email"], phone=zora["phone"], street=zora["street"],
        dob=zora["date_of_birth"], ref=zora["external_id"]))  # fmt: skip
    assert r.status_code == 201, r.text
    zora_id = r.json()["member_id"]
    others: dict[str, str] = {}
    for i, given in enumerate(("Otto", "Paula", "Rudi")):
        r = await reg.post(f"{base}/members", headers=staff, json=body(
            f"{given}{tag}", f"Bleibend{tag}", f"{given.lower()}.{run}@shred.example.org", phone=f"05251 11{i}",
            street=f"Bleibeweg {i}", dob=f"198{i}-01-01", ref=f"{given.lower()}-{run}"))  # fmt: skip
        assert r.status_code == 201, r.text
        others[given] = r.json()["member_id"]
    recent = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    r = await reg.post(f"{base}/hours", headers=staff, json=[
        {"member_id": zora_id, "hours": 300, "date_from": recent},
        *({"member_id": m, "hours": 12, "date_from": recent} for m in others.values())])  # fmt: skip
    assert r.status_code == 201, r.text

    # Inbound: an applied update and an hours report for her, and a dead letter each for her and Otto.
    zref = ExternalRef(system="vereinsverwaltung", id=zora["external_id"])
    applied = [
        make_record(RegisterMember(municipality=ags, external_ref=zref, given_name=zora["given_name"],
                                   family_name=zora["family_name"], email=zora["email"]), source=SYSTEM),
        make_record(ReportHours(municipality=ags, external_ref=zref, hours=5, date_from=date.fromisoformat(recent)),
                    source=SYSTEM),
    ]  # fmt: skip

    def broken(given: str, family: str, email: str, ref: str) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
        data = {
            "municipality": ags,
            "external_ref": {"system": "vereinsverwaltung", "id": ref},
            "given_name": given,
            "family_name": family,
            "email": email,
            "phone": "0" * 60,
        }  # phone too long
        event = {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": SYSTEM,
            "type": "de.engagiert.member.register.v1",
            "municipality": ags,
            "data": data,
        }
        return (inbound, ref.encode(), json.dumps(event).encode(),
                [("content-type", b"application/cloudevents+json")])  # fmt: skip

    otto_email = f"otto.{run}@shred.example.org"
    dead = [
        broken(zora["given_name"], zora["family_name"], zora["email"], zora["external_id"]),
        broken(f"Otto{tag}", f"Bleibend{tag}", otto_email, f"otto-{run}"),
    ]
    await produce_records(bootstrap, applied, topic=inbound)
    await produce_records(bootstrap, dead)

    async def dead_lettered() -> bool:
        got = await read_all(bootstrap, [topics.dlq(inbound)])
        return len(got[topics.dlq(inbound)]) >= 2

    await eventually(dead_lettered, timeout=120, what="both broken commands to be dead-lettered")

    async def hours_applied() -> bool:
        doc = (await reg.get(f"{base}/members/{zora_id}", headers=staff)).json()
        return doc["totals"]["hours_last_12_months"] >= 305

    await eventually(hours_applied, timeout=120, what="the inbound hours report to be applied")

    # Events: an invitation (a delivered e-mail) and a granted Ehrenamtskarte.
    event = (await ev.post(f"{base}/events", headers=staff, json={
        "kind": "Ehrenamtsempfang", "title": "Empfang", "starts_at": "2026-12-05T17:00:00+01:00",
        "venue": "Rathaus", "capacity": 50, "guests_per_invitee": 0,
        "rsvp_deadline": "2026-12-01T23:59:00+01:00", "status": "scheduled"})).json()  # fmt: skip
    event_id = event.get("id") or event.get("event_id")
    criteria = {"min_hours_last_12_months": 250}

    async def zora_in_preview() -> bool:
        resp = await ev.post(f"{base}/events/{event_id}/invitations/preview", headers=staff, json=criteria)
        return zora_id in resp.text

    await eventually(zora_in_preview, timeout=120, what="the events read model to know her hours")
    issued = await ev.post(f"{base}/events/{event_id}/invitations/issue", headers=staff, json=criteria)
    assert issued.status_code in (200, 201, 202), issued.text

    async def mail_delivered() -> bool:
        found = (await mail.get("/api/v1/search", params={"query": f"to:{zora['email']}"})).json()
        return bool(found.get("messages"))

    await eventually(mail_delivered, timeout=180, what="her invitation e-mail in Mailpit")

    async def card_proposed() -> dict[str, Any] | None:
        items = (await ev.get(f"{base}/honours", headers=staff)).json()
        items = items["items"] if isinstance(items, dict) else items
        return next((h for h in items if h.get("member_id") == zora_id and h.get("kind") == "ehrenamtskarte"), None)

    honour = await eventually(card_proposed, timeout=120, what="an Ehrenamtskarte proposal for her")
    granted = await ev.post(f"{base}/honours/{honour.get('id') or honour.get('honour_id')}/grant", headers=staff, json={})  # fmt: skip
    assert granted.status_code == 200, granted.text
    code = granted.json().get("verification_code") or granted.json().get("code")
    before = await ev.get(f"/v1/honours/verify/{code}")
    assert before.status_code == 200, before.text

    # Erase her; the registry reports complete once both services confirmed, her key is shredded
    # and the inbound topic and its dead letters are purged.
    assert (await reg.delete(f"{base}/members/{zora_id}", headers=staff)).status_code == 202

    async def complete() -> dict[str, Any] | None:
        status = (await reg.get(f"{base}/members/{zora_id}/erasure", headers=staff)).json()
        return status if status["complete"] else None

    status = await eventually(complete, timeout=300, what="the erasure to be complete")
    assert status["key_shredded"], status
    assert status["inbound_purged_at"], status
    client = create_client(stack.mongodb_url)
    env = platform["env"]
    try:
        ev_db, no_db = client[env["EVENTS_MONGODB_DATABASE"]], client[env["NOTIFICATIONS_MONGODB_DATABASE"]]

        async def our_services_erased() -> bool:
            # Other stacks' services confirm too (shared topics): wait for ours.
            member = await ev_db["members"].find_one({"_id": zora_id})
            contact = await no_db["contacts"].find_one({"_id": zora_id})
            return bool(member and member.get("erased") and contact and contact.get("erased"))

        await eventually(our_services_erased, timeout=180, what="our events and notifications to erase her")
        after = await ev.get(f"/v1/honours/verify/{code}")
        assert zora["family_name"] not in after.text
        assert zora["given_name"] not in after.text

        # 1. Every topic and dead-letter topic from offset 0, raw.
        names = [*topics.all_topics_with_dlq(), inbound, topics.dlq(inbound)]
        started = datetime.now(UTC)
        records = await read_all(bootstrap, names)
        scanned = sum(len(v) for v in records.values())
        on_topics = {t: occurrences(b"\x01".join(raw(r) for r in recs), needles) for t, recs in records.items()}
        on_topics = {t: f for t, f in on_topics.items() if f}
        print(
            f"scanned {scanned} records on {len(names)} topics in {(datetime.now(UTC) - started).total_seconds():.1f} s"
        )
        assert not on_topics, f"her personal data is readable on topics: {on_topics}"
        # Nothing valid was lost: Otto's dead letter is still there, and her records are still on the
        # members topic (sealed), only unreadable.
        assert otto_email.encode() in b"".join(raw(r) for r in records[topics.dlq(inbound)])
        assert any(zora_id.encode() in raw(r) for r in records[topics.REGISTRY_MEMBERS])
        assert not any(b"member.register" in raw(r) for r in records[inbound]), "applied commands are purged"

        # 2. Every database of the test.
        in_dbs: dict[str, dict[str, int]] = {}
        for name in ("registry", "events", "notifications"):
            db = client[env[f"{name.upper()}_MONGODB_DATABASE"]]
            for coll in await db.list_collection_names():
                docs = await db[coll].find({}).to_list(None)
                text = json_util.dumps(docs, ensure_ascii=False).encode()
                if found := occurrences(text, needles):
                    in_dbs[f"{name}.{coll}"] = found
        assert not in_dbs, f"her personal data is left in databases: {in_dbs}"
        key = await client[env["REGISTRY_MONGODB_DATABASE"]]["member_keys"].find_one({"_id": zora_id})
        assert key is not None, "a tombstone of her key stays"
        assert "key" not in key, "her key must be shredded"

        # 3. The logs: our services' and the shared stack's.
        log_files, in_logs = await asyncio.to_thread(scan_logs, platform["logs"], needles)
        assert log_files, "no logs found to scan"
        assert not in_logs, f"her personal data is in logs: {in_logs}"

        # 4. A replay of what our registry published rebuilds the events read model without her.
        keep = {m: await ev_db["members"].find_one({"_id": m}) for m in others.values()}
        copies = await _copy_municipality(bootstrap, platform["starts"], ags)
        args = [
            "--members-topic",
            copies[topics.REGISTRY_MEMBERS],
            "--engagement-topic",
            copies[topics.REGISTRY_ENGAGEMENT],
        ]
        result = await asyncio.to_thread(run_rebuild, "events", args, {**env, "LOG_LEVEL": "WARNING"})
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        counts = json.loads(result.stdout.decode().strip().splitlines()[-1])
        assert occurrences(result.stdout + result.stderr, needles) == {}
        living = await ev_db["members"].find({"municipality": ags, "erased": {"$ne": True}}).to_list(None)
        assert {d["_id"] for d in living} == set(others.values()), counts
        for m, doc in keep.items():
            again = await ev_db["members"].find_one({"_id": m})
            assert doc is not None
            assert again is not None
            for field in ("given_name", "family_name", "date_of_birth", "revision", "hours_by_day"):
                assert again.get(field) == doc.get(field), (field, again.get(field), doc.get(field))
        her = await ev_db["members"].find_one({"_id": zora_id})
        assert her is None or (her.get("erased") and "given_name" not in her), her
        assert occurrences(json_util.dumps(await ev_db["members"].find({}).to_list(None)).encode(), needles) == {}
        print(f"events rebuild: {counts}")

        # 5. ... and the notifications contacts read model likewise.
        kept = {m: await no_db["contacts"].find_one({"_id": m}) for m in others.values()}
        args = ["--members-topic", copies[topics.REGISTRY_MEMBERS]]
        result = await asyncio.to_thread(run_rebuild, "notifications", args, {**env, "LOG_LEVEL": "WARNING"})
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        counts = json.loads(result.stdout.decode().strip().splitlines()[-1])
        living = await no_db["contacts"].find({"municipality": ags, "erased": {"$ne": True}}).to_list(None)
        assert {d["_id"] for d in living} == set(others.values()), counts
        for m, doc in kept.items():
            again = await no_db["contacts"].find_one({"_id": m})
            assert doc is not None
            assert again is not None
            for field in ("given_name", "family_name", "email", "postal_address", "consent_channels", "revision"):
                assert again.get(field) == doc.get(field), (field, again.get(field), doc.get(field))
        her = await no_db["contacts"].find_one({"_id": zora_id})
        assert her is None or (her.get("erased") and "email" not in her), her
        assert occurrences(json_util.dumps(await no_db["contacts"].find({}).to_list(None)).encode(), needles) == {}
        print(f"notifications rebuild: {counts}")
    finally:
        await client.close()
        for c in (reg, ev, mail):
            await c.aclose()


async def _copy_municipality(bootstrap: str, starts: dict[TopicPartition, int], ags: str) -> dict[str, str]:
    """Copy the records our registry published about ``ags`` since the test began to topics of their own, in order."""
    sources = [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT]
    got = await read_all(bootstrap, sources, since=starts)
    copies = {t: await create_test_topics(bootstrap, f"test.shred-replay.{t}") for t in sources}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **aiokafka_options())
    await producer.start()
    try:
        for t, recs in got.items():
            for r in sorted(recs, key=lambda r: (r.partition, r.offset)):
                if ags.encode() in (r.value or b""):
                    await producer.send_and_wait(copies[t], r.value, key=r.key, headers=list(r.headers or []))
    finally:
        await producer.stop()
    return copies

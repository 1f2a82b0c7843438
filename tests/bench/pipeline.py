"""Platform figures with the services as processes: write-to-read-model latency, invitations to e-mails, peak memory.

``latency``: registry and events run as uvicorn processes; members are POSTed to the registry at a
steady (open-loop) rate; each write's latency is the time from sending the request until the
events service's read model (its own database, polled) holds the member's snapshot.

``invitations_to_mails``: events and notifications run as processes (and a registry, which holds
the members' keys); ``size`` member snapshots (with e-mail and consent, sealed with keys the bench
puts into that registry's database) are produced on ``registry.members.v1`` so both read models have the
members; then one HTTP call issues ``size`` invitations and the clock runs until Mailpit holds
``size`` invitation e-mails (or the deadline passes: the figure is then partial and says so).

Peak memory is each service process's ``VmHWM`` (peak resident set) read just before it stops.
"""

from __future__ import annotations

import asyncio
import random
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from engagiert.registry.repository import Repository
from engagiert.shared import topics
from engagiert.shared.contracts import Consent, Contact, MemberRegistered, MemberSnapshot, seal_snapshot
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.messaging.outbox import PENDING
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import ServiceProcess, StackEndpoints, auth_header, produce_records, skip_history
from engagiert.shared.testing.probes import Mailpit, drop_databases, peak_rss_mib

POLL_SECONDS = 0.01
"""How often the latency measurement looks into the events read model (its error: half of this on average)."""


def _ags() -> str:
    return f"99{random.randrange(10**6):06d}"


def percentile(values: list[float], p: float) -> float:
    """Return the ``p``-th percentile (0-100) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@asynccontextmanager
async def services(
    stack: StackEndpoints, run: str, names: tuple[str, ...], *, log_dir: Path | None = None, **extra: str
) -> AsyncIterator[dict[str, Any]]:
    """Give settings for ``names`` as uvicorn processes with databases and groups of their own (see :func:`start`).

    On leaving, each process's peak memory (MiB) goes into the dict's ``peak_rss_mib``, the
    processes stop and their databases are dropped.
    """
    env = {**stack.env(), "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", **extra}
    dbs, groups = {}, {}
    for name in names:
        dbs[name] = env[f"{name.upper()}_MONGODB_DATABASE"] = f"bench_{name}_{run}"
        groups[name] = env[f"{name.upper()}_CONSUMER_GROUP"] = f"bench-{name}-{run}"
    state: dict[str, Any] = {
        "procs": {}, "dbs": dbs, "groups": groups, "env": env, "peak_rss_mib": {}, "log_dir": log_dir,
    }  # fmt: skip
    try:
        yield state
    finally:
        procs = state["procs"]
        for name, proc in procs.items():
            if proc.proc is not None:
                state["peak_rss_mib"][name] = peak_rss_mib(proc.proc.pid)
                if proc.proc.poll() is None:
                    proc.proc.send_signal(signal.SIGTERM)  # all at once: their graceful stops overlap
        for proc in procs.values():
            proc.stop()
        await drop_databases(stack.mongodb_url, list(dbs.values()))


def start(state: dict[str, Any], name: str) -> ServiceProcess:
    """Start one service of ``state`` and wait until it is ready."""
    proc = ServiceProcess(f"engagiert.{name}.main", env=state["env"], log_dir=state["log_dir"]).start(wait_ready=120)
    state["procs"][name] = proc
    if name == "registry":  # it holds the members' keys: the services started after it ask it
        state["env"]["MEMBER_KEYS_URL"] = proc.url
    return proc


async def latency(
    stack: StackEndpoints,
    *,
    rate: float = 5.0,
    seconds: float = 30.0,
    warmup_seconds: float = 5.0,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """POST members to the registry at ``rate``/s for ``seconds``; percentiles until the events read model has each.

    The first ``warmup_seconds`` of writes (at the same rate) are not counted: the first requests
    after a start open the store's and the broker's connections, build the validators and fetch
    the topic's metadata and the first member keys. Their figures are reported apart
    (``warmup_max_ms``); the percentiles are the steady state the goal is about.
    """
    run = uuid.uuid4().hex[:8]
    ags = _ags()
    async with services(stack, run, ("registry", "events"), log_dir=log_dir) as state:
        await skip_history(
            stack.kafka_bootstrap_servers,
            state["groups"]["events"],
            [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT],
        )
        registry, _ = start(state, "registry"), start(state, "events")
        client = create_client(stack.mongodb_url)
        read_model = client[state["dbs"]["events"]]["members"]
        sent: dict[str, float] = {}
        acked: list[tuple[float, float]] = []
        seen: dict[str, float] = {}
        failed = 0
        staff = auth_header([ags], "staff")
        try:
            async with httpx.AsyncClient(base_url=registry.url, timeout=30) as http:
                created = await http.post(
                    "/v1/municipalities",
                    headers=auth_header(["*"], "network-admin"),
                    json={"ags": ags, "name": "Benchstadt", "kind": "Stadt"},
                )
                created.raise_for_status()

                async def write(i: int) -> None:
                    nonlocal failed
                    body = {"given_name": f"Lat{i}", "family_name": f"Bench{run}",
                            "contact": {"email": f"lat{i}.{run}@bench.example.org"}}  # fmt: skip
                    started = time.perf_counter()
                    try:
                        resp = await http.post(f"/v1/municipalities/{ags}/members", headers=staff, json=body)
                        resp.raise_for_status()
                    except httpx.HTTPError:
                        failed += 1
                        return
                    acked.append((time.perf_counter() - started, started))
                    sent[resp.json()["member_id"]] = started

                async def poll(stop: asyncio.Event) -> None:
                    while not stop.is_set() or len(seen) < len(sent):
                        pending = [m for m in sent if m not in seen]
                        if pending:
                            now = time.perf_counter()
                            query = {"_id": {"$in": pending}, "revision": {"$exists": True}}
                            async for doc in read_model.find(query, {"_id": 1}):
                                seen[doc["_id"]] = now
                        if stop.is_set() and time.perf_counter() > drain_until:
                            return
                        await asyncio.sleep(POLL_SECONDS)

                warmup = int(rate * warmup_seconds)
                total = warmup + int(rate * seconds)
                stop = asyncio.Event()
                drain_until = float("inf")
                poller = asyncio.create_task(poll(stop))
                origin = time.perf_counter()
                counted_from = origin
                tasks = []
                for i in range(total):
                    delay = origin + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(write(i)))
                    if i == warmup - 1:
                        await asyncio.gather(*tasks)  # the warm-up's writes are in before the measured ones start
                        counted_from = time.perf_counter()
                await asyncio.gather(*tasks)
                drain_until = time.perf_counter() + 60
                stop.set()
                await poller
        finally:
            await client.close()
    measured = [m for m in sent if sent[m] >= counted_from]
    warm = [(seen[m] - sent[m]) * 1000 for m in sent if m in seen and sent[m] < counted_from]
    latencies = [(seen[m] - sent[m]) * 1000 for m in measured if m in seen]
    acks = [a for a, started in acked if started >= counted_from]
    result: dict[str, Any] = {
        "writes": len(measured),
        "warmup_writes": warmup,
        "warmup_max_ms": round(max(warm), 1) if warm else None,
        "rate_per_s": rate,
        "seconds": seconds,
        "write_errors": failed,
        "not_in_read_model_after_60s": len(measured) - len(latencies),
        "poll_interval_ms": round(POLL_SECONDS * 1000),
    }
    if latencies:
        result.update(
            {
                "write_to_read_model_p50_ms": round(percentile(latencies, 50), 1),
                "write_to_read_model_p95_ms": round(percentile(latencies, 95), 1),
                "write_to_read_model_p99_ms": round(percentile(latencies, 99), 1),
                "write_to_read_model_max_ms": round(max(latencies), 1),
                "slowest_five_ms": ", ".join(f"{v:.0f}" for v in sorted(latencies)[-5:]),
                "http_ack_p50_ms": round(statistics.median([a * 1000 for a in acks]), 1),
                "http_ack_p99_ms": round(percentile([a * 1000 for a in acks], 99), 1),
            }
        )
    result["peak_rss_mib"] = state["peak_rss_mib"]
    return result


def _member(member_id: str, ags: str, run: str, i: int) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=member_id, municipality=ags, revision=1, given_name="Inv", family_name=f"Bench{i}",
        contact=Contact(email=f"inv{i}.{run}@bench.example.org"), consent=Consent(channels=["email"]),
    )  # fmt: skip


async def _sealed_records(db: Any, ids: list[str], ags: str, run: str) -> list[OutgoingRecord]:
    """Return the members' MemberRegistered records sealed as the registry writes them (keys in its database)."""
    repo = Repository(db)
    keys = await repo.create_member_keys(ids, now=datetime.now(UTC))
    records = []
    for i, m in enumerate(ids):
        key = keys.get(m)
        if key is None:
            raise RuntimeError(f"no key for {m}")
        records.append(
            make_record(MemberRegistered(member=seal_snapshot(_member(m, ags, run, i), key)), source="/bench")
        )
    return records


async def _count(collection: Any, query: dict[str, Any]) -> int:
    return int(await collection.count_documents(query))


async def invitations_to_mails(
    stack: StackEndpoints, *, size: int = 2_000, deadline: float = 300.0, log_dir: Path | None = None
) -> dict[str, Any]:
    """Issue ``size`` invitations in one call and time until Mailpit holds ``size`` of them.

    The whole phase (members into both read models, issuing, e-mails) stops waiting ``deadline``
    seconds after it began; the figure is then partial (``complete: false``, how many arrived).
    """
    stop_at = time.perf_counter() + deadline
    run = uuid.uuid4().hex[:8]
    ags = _ags()
    title = f"Ehrenamtsempfang Bench {run}"
    mailpit = Mailpit(stack.mailpit_api_url)
    result: dict[str, Any] = {"invitations": size}
    extra = {"NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2"}
    async with services(stack, run, ("registry", "events", "notifications"), log_dir=log_dir, **extra) as state:
        await skip_history(stack.kafka_bootstrap_servers, state["groups"]["registry"], [topics.REGISTRY_INBOUND])
        await skip_history(
            stack.kafka_bootstrap_servers,
            state["groups"]["events"],
            [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT],
        )
        await skip_history(
            stack.kafka_bootstrap_servers,
            state["groups"]["notifications"],
            [topics.REGISTRY_MEMBERS, topics.NOTIFICATIONS_REQUESTS],
        )
        start(state, "registry")  # only the key service here: the members' snapshots come sealed from the bench
        events = start(state, "events")
        start(state, "notifications")
        client = create_client(stack.mongodb_url)
        members = client[state["dbs"]["events"]]["members"]
        contacts = client[state["dbs"]["notifications"]]["contacts"]
        deliveries = client[state["dbs"]["notifications"]]["deliveries"]
        invitations = client[state["dbs"]["events"]]["invitations"]
        try:
            ids = [f"inv-{run}-{i:06d}" for i in range(size)]
            records = await _sealed_records(client[state["dbs"]["registry"]], ids, ags, run)
            started = time.perf_counter()
            await produce_records(stack.kafka_bootstrap_servers, records)
            ready: dict[str, float] = {}
            while len(ready) < 2:
                if time.perf_counter() > stop_at:
                    raise TimeoutError("the read models did not get every member within the deadline")
                await asyncio.sleep(0.5)
                if "events" not in ready and await _count(members, {"municipality": ags, "revision": 1}) >= size:
                    ready["events"] = time.perf_counter() - started
                if "notifications" not in ready and await _count(contacts, {}) >= size:
                    ready["notifications"] = time.perf_counter() - started
            result["snapshots_into_events_read_model_s"] = round(ready["events"], 1)
            result["snapshots_into_notifications_read_model_s"] = round(ready["notifications"], 1)
            staff = auth_header([ags], "staff")
            starts = datetime.now(UTC) + timedelta(days=30)
            body = {
                "kind": "Ehrenamtsempfang", "title": title, "starts_at": starts.isoformat(),
                "venue": "Historisches Rathaus", "capacity": size, "guests_per_invitee": 1,
                "rsvp_deadline": (starts - timedelta(days=7)).isoformat(), "status": "scheduled",
            }  # fmt: skip
            async with httpx.AsyncClient(base_url=events.url, timeout=900) as http:
                created = await http.post(f"/v1/municipalities/{ags}/events", headers=staff, json=body)
                created.raise_for_status()
                event_id = created.json()["id"]
                query = f'subject:"{title}"'
                origin = time.perf_counter()
                issued = await http.post(
                    f"/v1/municipalities/{ags}/events/{event_id}/invitations/issue",
                    headers=staff,
                    json={"min_hours_last_12_months": 0},
                )
                issued.raise_for_status()
                result["issue_http_s"] = round(time.perf_counter() - origin, 1)
                result["issued"] = issued.json()["issued"]
                delivered, first, half, published = 0, None, None, None
                while delivered < size and time.perf_counter() < stop_at:
                    await asyncio.sleep(1.0)
                    delivered = await mailpit.count(query)
                    now = time.perf_counter() - origin
                    if delivered and first is None:
                        first = now
                    if delivered >= size / 2 and half is None:
                        half = now
                    if published is None and await invitations.find_one({PENDING: True}, {"_id": 1}) is None:
                        published = now
                elapsed = time.perf_counter() - origin
            result.update(
                {
                    "requests_published_s": round(published, 1) if published is not None else None,
                    "first_mail_s": round(first, 1) if first is not None else None,
                    "half_of_mails_s": round(half, 1) if half is not None else None,
                    "issue_to_all_mails_s": round(elapsed, 1) if delivered >= size else None,
                    "mails_in_mailpit": delivered,
                    "complete": delivered >= size,
                    "observed_s": round(elapsed, 1),
                    "mails_per_s": round(delivered / elapsed, 1),
                    "deliveries_logged_sent_at_the_end": await _count(deliveries, {"status": "sent"}),
                }
            )
        finally:
            await client.close()
    result["peak_rss_mib"] = state["peak_rss_mib"]
    return result

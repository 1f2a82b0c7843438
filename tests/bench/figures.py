"""Times the network's figures over generated data: many municipalities with many members each.

The data goes straight into two scratch databases in bulk (as the services would have written
it): for the registry the municipalities, members, organisations and hours entries; for events
the municipality read model, recognition events, invitations and honours. Then the registry and
the events app (in this process, on the real store and broker) answer ``GET /v1/network/figures``
(JSON, then the CSV, which the answer kept for the period serves) and one municipality's
``GET /v1/municipalities/{ags}/figures``; each call is timed.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from engagiert.events.config import EventsSettings
from engagiert.events.main import create_app as create_events
from engagiert.events.repository import EVENTS, HONOURS, INVITATIONS
from engagiert.events.repository import MUNICIPALITIES as EVENTS_MUNICIPALITIES
from engagiert.registry.config import RegistrySettings
from engagiert.registry.main import create_app as create_registry
from engagiert.registry.repository import HOURS, MEMBERS, MUNICIPALITIES, ORGANISATIONS
from engagiert.shared.contracts.base import Field_
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import StackEndpoints, app_client, auth_header, create_test_topics

FIELDS: tuple[str, ...] = Field_.__args__  # type: ignore[attr-defined]
KINDS = ("Stadt", "Stadt", "Gemeinde", "Gemeinde", "Kreis")
CHUNK = 1000
ORGANISATIONS_EACH = 20
EVENTS_EACH = 10
INVITATIONS_EACH = 30
HONOURS_EACH = 40


def _ags(i: int) -> str:
    return f"05{700000 + i:06d}"


def registry_data(
    rng: random.Random, *, municipalities: int, members: int, today: date
) -> dict[str, list[dict[str, Any]]]:
    """Return the registry's generated documents per collection."""
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    data: dict[str, list[dict[str, Any]]] = {MUNICIPALITIES: [], MEMBERS: [], ORGANISATIONS: [], HOURS: []}
    for i in range(municipalities):
        ags = _ags(i)
        data[MUNICIPALITIES].append(
            {
                "_id": ags, "name": f"Benchstadt {i}", "kind": KINDS[i % len(KINDS)], "revision": 1,
                "inhabitants": rng.choice([6_000, 15_000, 35_000, 80_000, 150_000, 600_000]),
                "named_in_network": i % 10 != 3, "created_at": now,
            }
        )  # fmt: skip
        for o in range(ORGANISATIONS_EACH):
            data[ORGANISATIONS].append(
                {
                    "_id": f"o-{ags}-{o}", "municipality": ags, "name": f"Verein {o}", "kind": "Verein",
                    "fields": [rng.choice(FIELDS)], "created_at": now - timedelta(days=rng.randrange(2000)),
                }
            )  # fmt: skip
        for m in range(members):
            member_id = f"m-{ags}-{m:05d}"
            engagements = [
                {
                    "engagement_id": f"{member_id}-e{e}", "organisation_id": None, "organisation_name": None,
                    "field": rng.choice(FIELDS), "role": None,
                    "since": (today - timedelta(days=rng.randrange(30, 4000))).isoformat(), "until": None,
                }
                for e in range(rng.choice((1, 1, 2)))
            ]  # fmt: skip
            born = None if rng.random() < 0.05 else date(rng.randrange(1940, 2012), rng.randrange(1, 13), 1)
            data[MEMBERS].append(
                {
                    "_id": member_id, "municipality": ags, "revision": 1,
                    "given_name": "Bench", "family_name": f"Mitglied {m}",
                    "date_of_birth": born.isoformat() if born else None,
                    "status": rng.choices(("active", "paused", "left"), (85, 10, 5))[0],
                    "engagements": engagements, "fields": sorted({e["field"] for e in engagements}),
                    "created_at": now - timedelta(days=rng.randrange(1500)),
                }
            )  # fmt: skip
            for h in range(rng.choice((0, 1, 1, 2, 3))):
                first = today - timedelta(days=rng.randrange(400))
                data[HOURS].append(
                    {
                        "_id": f"h-{member_id}-{h}", "member_id": member_id, "municipality": ags,
                        "hours": float(rng.randrange(1, 20)), "date_from": first.isoformat(),
                        "date_to": (first + timedelta(days=rng.randrange(0, 5))).isoformat(),
                        "organisation_id": None, "reported_by": "bench", "recorded_at": now,
                    }
                )  # fmt: skip
    return data


def events_data(rng: random.Random, *, municipalities: int, today: date) -> dict[str, list[dict[str, Any]]]:
    """Return the events service's generated documents per collection."""
    now = datetime.now(UTC)
    data: dict[str, list[dict[str, Any]]] = {EVENTS_MUNICIPALITIES: [], EVENTS: [], INVITATIONS: [], HONOURS: []}
    statuses = ("accepted", "accepted", "accepted", "declined", "invited", "waitlisted", "withdrawn")
    for i in range(municipalities):
        ags = _ags(i)
        data[EVENTS_MUNICIPALITIES].append(
            {
                "_id": ags, "ags": ags, "revision": 1, "name": f"Benchstadt {i}", "kind": KINDS[i % len(KINDS)],
                "inhabitants": rng.choice([6_000, 15_000, 35_000, 80_000, 150_000, 600_000]),
                "named_in_network": i % 10 != 3,
            }
        )  # fmt: skip
        for e in range(EVENTS_EACH):
            event_id = f"ev-{ags}-{e}"
            status = rng.choices(("completed", "scheduled", "cancelled", "draft"), (6, 2, 1, 1))[0]
            data[EVENTS].append(
                {
                    "_id": event_id, "municipality": ags, "status": status, "kind": "Feierstunde",
                    "title": "Feierstunde", "starts_at": now - timedelta(days=rng.randrange(-30, 330)),
                    "capacity": INVITATIONS_EACH,
                }
            )  # fmt: skip
            for n in range(INVITATIONS_EACH):
                invitation = rng.choice(statuses)
                attended = rng.choice((True, True, True, False, None)) if invitation == "accepted" else None
                data[INVITATIONS].append(
                    {
                        "_id": f"{event_id}:m{n}", "event_id": event_id, "municipality": ags,
                        "member_id": f"m-{ags}-{n:05d}", "status": invitation, "attended": attended, "seq": n,
                    }
                )  # fmt: skip
        for h in range(HONOURS_EACH):
            kind = rng.choices(("ehrenamtskarte", "jubilaeums-ehrenamtskarte", "engagementnachweis", "local-award"),
                               (6, 1, 2, 1))[0]  # fmt: skip
            granted = now - timedelta(days=rng.randrange(1200))
            until = granted.date() + timedelta(days=3 * 365) if kind == "ehrenamtskarte" else None
            data[HONOURS].append(
                {
                    "_id": f"ho-{ags}-{h}", "municipality": ags, "member_id": f"m-{ags}-{h:05d}", "kind": kind,
                    "status": "expired" if until and until < today else "granted", "granted_at": granted,
                    "valid_from": granted.date().isoformat(), "valid_until": until.isoformat() if until else None,
                }
            )  # fmt: skip
    return data


async def _insert(collection: AsyncCollection[dict[str, Any]], docs: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(docs), CHUNK):
        await collection.insert_many(docs[start : start + CHUNK], ordered=False)


async def _timed_get(client: Any, url: str, headers: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = await client.get(url, headers=headers, timeout=600)
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    return seconds, answer


async def network_figures(stack: StackEndpoints, *, municipalities: int = 100, members: int = 1000) -> dict[str, Any]:
    """Return the seconds the registry and events take for the network's figures and one municipality's."""
    run_id = uuid.uuid4().hex[:8]
    rng = random.Random(17)
    today = datetime.now(UTC).date()
    period = str(today.year)
    reader = auth_header([_ags(0)], "reader")
    figures: dict[str, Any] = {"municipalities": municipalities, "members_each": members}

    started = time.perf_counter()
    registry_docs = registry_data(rng, municipalities=municipalities, members=members, today=today)
    events_docs = events_data(rng, municipalities=municipalities, today=today)
    figures["generate_s"] = round(time.perf_counter() - started, 2)
    figures["documents"] = sum(len(d) for d in registry_docs.values()) + sum(len(d) for d in events_docs.values())

    inbound = await create_test_topics(stack.kafka_bootstrap_servers, "bench.figures-inbound")
    registry_settings = RegistrySettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=f"bench_figures_reg_{run_id}",
        consumer_group=f"bench-figures-reg-{run_id}",
        inbound_topic=inbound,
    )
    # The events app reads throwaway topics: the shared ones' traffic (other runs' members and
    # erasures) would land in its read model and load the store while it is measured.
    events_settings = EventsSettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=f"bench_figures_ev_{run_id}",
        consumer_group=f"bench-figures-ev-{run_id}",
        scheduler_seconds=3600,
        members_topic=await create_test_topics(stack.kafka_bootstrap_servers, "bench.figures-members"),
        engagement_topic=await create_test_topics(stack.kafka_bootstrap_servers, "bench.figures-engagement"),
    )
    # Inserted before the apps start: their start creates the indexes over the data in one go,
    # which the store does much faster than keeping six indexes up to date insert by insert.
    client = create_client(stack.mongodb_url)
    reg_db, ev_db = client[registry_settings.database_name], client[events_settings.database_name]
    try:
        started = time.perf_counter()
        for name, docs in registry_docs.items():
            await _insert(reg_db[name], docs)
        for name, docs in events_docs.items():
            await _insert(ev_db[name], docs)
        figures["insert_s"] = round(time.perf_counter() - started, 2)
        registry, events = create_registry(registry_settings), create_events(events_settings)
        started = time.perf_counter()
        async with app_client(registry) as reg_client, app_client(events) as ev_client:
            figures["start_with_indexes_s"] = round(time.perf_counter() - started, 2)
            for service, app_http in (("registry", reg_client), ("events", ev_client)):
                seconds, answer = await _timed_get(app_http, f"/v1/network/figures?period={period}", reader)
                figures[f"{service}_network_s"] = round(seconds, 2)
                figures[f"{service}_network_rows"] = len(answer.json()["municipalities"])
                seconds, _ = await _timed_get(app_http, f"/v1/network/figures?period={period}&format=csv", reader)
                figures[f"{service}_network_csv_cached_s"] = round(seconds, 2)
                url = f"/v1/municipalities/{_ags(0)}/figures?period={period}"
                seconds, _ = await _timed_get(app_http, url, reader)
                figures[f"{service}_municipality_s"] = round(seconds, 2)
    finally:
        await client.drop_database(reg_db.name)
        await client.drop_database(ev_db.name)
        await client.close()
    return figures

"""Proves the events service's figures on the real stack: hand-computed values, the municipality read model
fed by the registry's profiles on Kafka, scoping, anonymity and the naming opt-out (JSON and CSV)."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engagiert.events.repository import EVENTS, HONOURS, INVITATIONS, MUNICIPALITIES
from engagiert.shared.contracts import MunicipalityProfile, MunicipalityProfileChanged
from engagiert.shared.envelope import make_record
from engagiert.shared.figures import parse_period
from engagiert.shared.testing import auth_header, produce_records
from engagiert.shared.testing.waiting import eventually

Running = Any  # the fixture type lives in conftest.py (not importable under importlib mode)

pytestmark = pytest.mark.integration


def _event(event_id: str, ags: str, status: str, starts_at: datetime) -> dict[str, Any]:
    return {"_id": event_id, "municipality": ags, "status": status, "starts_at": starts_at, "kind": "Feierstunde"}


def _invitations(event_id: str, ags: str, *rows: tuple[str, bool | None, int]) -> list[dict[str, Any]]:
    docs = []
    for status, attended, n in rows:
        for _ in range(n):
            seq = len(docs)
            docs.append(
                {
                    "_id": f"{event_id}:m{status}{attended}{seq}",
                    "event_id": event_id,
                    "municipality": ags,
                    "member_id": f"m-{event_id}-{seq}",
                    "status": status,
                    "attended": attended,
                    "seq": seq,
                }
            )
    return docs


def _honour(n: int, ags: str, kind: str, status: str, granted: datetime | None, until: date | None) -> dict[str, Any]:
    return {
        "_id": f"h{n}-{ags}",
        "municipality": ags,
        "member_id": f"m{n}",
        "kind": kind,
        "status": status,
        "granted_at": granted,
        "valid_from": granted.date().isoformat() if granted else None,
        "valid_until": until.isoformat() if until else None,
    }


async def _profiles(r: Running, *profiles: MunicipalityProfile) -> None:
    """Publish municipality profiles as the registry does; wait until the read model holds them."""
    records = [
        make_record(MunicipalityProfileChanged(municipality=p.ags, profile=p), source="/tests") for p in profiles
    ]
    await produce_records(r.settings.kafka_bootstrap_servers, records)
    wanted = {p.ags for p in profiles}

    async def stored() -> bool:
        docs = await r.db[MUNICIPALITIES].find({"_id": {"$in": list(wanted)}}).to_list(None)
        return {d["_id"] for d in docs} == wanted

    await eventually(stored, timeout=60, what="the municipality profiles in the read model")


async def test_events_figures_match_hand_computed_values_and_the_network_is_anonymous(running: Running) -> None:
    """Events held, rates, honours and expiring cards are exact for the municipality, anonymised for the network."""
    r = running
    ags = r.ags
    hidden_ags = f"98{random.randrange(10**6):06d}"
    other_ags = f"97{random.randrange(10**6):06d}"
    await _profiles(
        r,
        MunicipalityProfile(ags=ags, revision=1, name="Stadt Figurenstadt", kind="Stadt", inhabitants=120_000),
        MunicipalityProfile(
            ags=hidden_ags, revision=2, name="Gemeinde Geheimdorf", kind="Gemeinde", inhabitants=8_000,
            named_in_network=False,
        ),
        MunicipalityProfile(ags=other_ags, revision=1, name="Stadt Nachbarstadt", kind="Stadt"),
    )  # fmt: skip

    now = datetime.now(UTC)
    period = parse_period(None, today=now.date())
    start = period.start_at
    span = now - start
    events = [
        _event("e1", ags, "completed", start + span / 3),  # held, with check-in
        _event("e2", ags, "scheduled", start + 2 * span / 3),  # held, no check-in
        _event("e3", ags, "cancelled", start + span / 2),
        _event("e4", ags, "scheduled", now + timedelta(minutes=30)),  # ahead
        _event("e5", ags, "draft", start + span / 4),
        _event("e6", ags, "completed", start - timedelta(days=40)),  # last year
    ]
    invitations = [
        *_invitations(
            "e1", ags, ("accepted", True, 6), ("accepted", False, 1), ("accepted", None, 1), ("declined", None, 2),
            ("invited", None, 1), ("waitlisted", None, 2), ("withdrawn", None, 1),
        ),
        *_invitations("e2", ags, ("accepted", None, 3), ("declined", None, 1)),
        *_invitations("e3", ags, ("accepted", True, 5)),
        *_invitations("e6", ags, ("accepted", True, 9)),
    ]  # fmt: skip
    granted = start + span / 5
    end = period.end
    honours = [
        _honour(1, ags, "ehrenamtskarte", "granted", granted, end + timedelta(days=46)),  # expiring
        *[_honour(n, ags, "ehrenamtskarte", "granted", granted, end + timedelta(days=900)) for n in (2, 3, 4, 5)],
        _honour(6, ags, "ehrenamtskarte", "revoked", granted, end + timedelta(days=10)),
        _honour(7, ags, "engagementnachweis", "granted", granted, None),
        _honour(8, ags, "ehrenamtskarte", "expired", start - timedelta(days=900), period.start + timedelta(days=100)),
        _honour(9, ags, "ehrenamtskarte", "granted", start - timedelta(days=300), end + timedelta(days=121)),
        _honour(10, ags, "ehrenamtskarte", "expired", start - timedelta(days=1200), period.start - timedelta(days=1)),
        _honour(11, ags, "local-award", "proposed", None, None),
    ]
    await r.db[EVENTS].insert_many(events)
    await r.db[INVITATIONS].insert_many(invitations)
    await r.db[HONOURS].insert_many(honours)

    got = await r.client.get(f"/v1/municipalities/{ags}/figures", headers=auth_header([ags], "reader"))
    assert got.status_code == 200, got.text
    own = got.json()
    assert (own["municipality"], own["source"], own["period"]) == (ags, "events", period.label)
    f = own["figures"]
    assert f["events_held"] == 2
    assert f["invitations_accepted_rate"] == round(11 / 15, 4)  # 8 + 3 of 15 offered (waitlisted, withdrawn: not)
    assert f["attendance_rate"] == 0.75  # 6 of the 8 accepted for e1; e2 had no check-in
    assert f["honours_granted"] == 7
    assert f["honours_granted_by_type"] == {
        "ehrenamtskarte": 6, "jubilaeums_ehrenamtskarte": 0, "engagementnachweis": 1, "local_award": 0,
    }  # fmt: skip
    assert f["cards_expiring"] == 2  # honour 1 (within 90 days after the period) and 8 (expired in it)

    other_reader = auth_header([other_ags], "reader")
    assert (await r.client.get(f"/v1/municipalities/{ags}/figures", headers=other_reader)).status_code == 404
    bad = await r.client.get(f"/v1/municipalities/{ags}/figures?period=2026-Q9", headers=r.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")

    got = await r.client.get(f"/v1/network/figures?period={period.label}", headers=other_reader)
    assert got.status_code == 200, got.text
    network = got.json()
    rows = {row["label"]: row for row in network["municipalities"]}
    assert [row["label"] for row in network["municipalities"]] == sorted(row for row in rows)
    mine = rows["Stadt Figurenstadt"]
    assert (mine["ags"], mine["named"], mine["size_class"]) == (ags, True, "100k_500k")
    g = mine["figures"]
    assert g["events_held"] is None  # 2 < k
    assert (g["invitations_accepted_rate"], g["attendance_rate"]) == (round(11 / 15, 4), 0.75)  # denominators >= k
    assert g["honours_granted"] == 7
    assert set(g["honours_granted_by_type"].values()) == {None}  # 7 - 6 would give the one Engagementnachweis away
    assert g["cards_expiring"] is None
    unnamed = [row for row in network["municipalities"] if row["label"] == "Gemeinde, unter 10.000 Einw."]
    assert len(unnamed) == 1
    assert (unnamed[0]["ags"], unnamed[0]["named"]) == (None, False)

    csv_answer = await r.client.get(f"/v1/network/figures?period={period.label}&format=csv", headers=other_reader)
    assert csv_answer.status_code == 200
    table = list(csv.DictReader(io.StringIO(csv_answer.content.decode("utf-8-sig")), delimiter=";"))
    line = next(row for row in table if row["label"] == "Stadt Figurenstadt")
    assert (line["honours_granted"], line["attendance_rate"], line["events_held"]) == ("7", "0,75", "")
    for body in (got.text, csv_answer.content.decode("utf-8-sig")):
        for secret in ("Geheimdorf", hidden_ags):
            assert secret not in body, "a municipality that opted out is named"
        for secret in ("m-e1-", "e1:", "h1-"):
            assert secret not in body, "member-level data in the network's answer"

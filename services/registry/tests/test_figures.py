"""Proves the registry's figures on the real stack: hand-computed values, scoping, anonymity, naming opt-out, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest

from engagiert.shared.testing import auth_header

from .conftest import ADMIN, BIELEFELD, PADERBORN, READER_PB, STAFF_PB, Registry, member_body

pytestmark = pytest.mark.integration

HOEVELHOF = "05774020"  # chose not to be named in the network
READER_BI = auth_header([BIELEFELD], "reader")
YEAR = str(date.today().year)


async def _seed(registry: Registry) -> dict[str, Any]:
    """Register Paderborn's members, one organisation and hours; Hövelhof (not named) with a few members."""
    c = registry.client
    base = f"/v1/municipalities/{PADERBORN}"
    org = (await c.post(f"{base}/organisations", json={"name": "TuS", "kind": "Verein"}, headers=STAFF_PB)).json()
    ids: list[str] = []
    people = [
        *[("1980-05-01", "Sport")] * 6,
        ("2010-01-01", "Kultur"),
        ("1950-01-01", "Soziales"),
    ]
    for n, (dob, field) in enumerate(people):
        body = member_body(
            f"fig{n}", date_of_birth=dob, engagements=[{"field": field, "role": "Helferin", "since": "2020-01-01"}]
        )
        r = await c.post(f"{base}/members", json=body, headers=STAFF_PB)
        assert r.status_code == 201, r.text
        ids.append(r.json()["member_id"])
    r = await c.post(f"{base}/members/{ids[7]}/status", json={"status": "paused"}, headers=STAFF_PB)
    assert r.status_code == 200, r.text
    hours = [
        {"member_id": ids[0], "hours": 10, "date_from": f"{YEAR}-11-01"},
        {"member_id": ids[1], "hours": 4, "date_from": f"{YEAR}-10-15"},
        *[{"member_id": ids[i], "hours": 2, "date_from": f"{YEAR}-11-20"} for i in (2, 3, 4)],
        # 10 days, 4 of them in the fourth quarter: 1.2 hours there
        {"member_id": ids[6], "hours": 3, "date_from": f"{YEAR}-09-25", "date_to": f"{YEAR}-10-04"},
        {"member_id": ids[7], "hours": 5, "date_from": f"{int(YEAR) - 1}-06-01"},
    ]
    r = await c.post(f"{base}/hours", json=hours, headers=STAFF_PB)
    assert r.status_code == 201, r.text
    body = {"ags": HOEVELHOF, "name": "Gemeinde Hövelhof", "kind": "Gemeinde", "inhabitants": 16_500}
    r = await c.post("/v1/municipalities", json={**body, "named_in_network": False}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await c.patch(f"/v1/municipalities/{PADERBORN}", json={"inhabitants": 152_000}, headers=ADMIN)
    assert r.status_code == 200, r.text
    staff_hv = auth_header([HOEVELHOF], "staff")
    for n in range(6):
        r = await c.post(f"/v1/municipalities/{HOEVELHOF}/members", json=member_body(f"hv{n}"), headers=staff_hv)
        assert r.status_code == 201, r.text
    return {"ids": ids, "org": org["id"]}


async def test_figures_match_hand_computed_values_and_the_network_hides_small_cells(registry: Registry) -> None:
    """Own figures are exact; the network shows them anonymised, names no one who opted out, and leaks no member."""
    seeded = await _seed(registry)
    c = registry.client

    r = await c.get(f"/v1/municipalities/{PADERBORN}/figures", headers=READER_PB)
    assert r.status_code == 200, r.text
    year = r.json()
    assert (year["municipality"], year["period"], year["source"]) == (PADERBORN, YEAR, "registry")
    assert (year["period_start"], year["period_end"]) == (f"{YEAR}-01-01", f"{YEAR}-12-31")
    f = year["figures"]
    assert (f["members_active"], f["members_new"], f["organisations"]) == (7, 8, 1)
    assert {k: v for k, v in f["members_by_age_band"].items() if v} == {"30_49": 6, "under_18": 1}
    assert {k: v for k, v in f["members_by_field"].items() if v} == {"sport": 6, "kultur": 1}
    assert f["hours_total"] == 23.0
    assert {k: v for k, v in f["hours_by_field"].items() if v} == {"sport": 20.0, "kultur": 3.0}

    q4 = (await c.get(f"/v1/municipalities/{PADERBORN}/figures?period={YEAR}-Q4", headers=STAFF_PB)).json()
    assert (q4["period_start"], q4["period_end"]) == (f"{YEAR}-10-01", f"{YEAR}-12-31")
    assert q4["figures"]["hours_total"] == 21.2
    assert q4["figures"]["hours_by_field"]["kultur"] == 1.2
    q1 = (await c.get(f"/v1/municipalities/{PADERBORN}/figures?period={YEAR}-Q1", headers=STAFF_PB)).json()
    assert (q1["figures"]["members_new"], q1["figures"]["hours_total"]) == (0, 0.0)

    # Bielefeld may not see Paderborn's own figures: the same 404 as for an unknown municipality.
    r = await c.get(f"/v1/municipalities/{PADERBORN}/figures", headers=READER_BI)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    for bad in ("26", "2026-Q5", "1999", "2026-q1", "2026-12"):
        r = await c.get(f"/v1/municipalities/{PADERBORN}/figures?period={bad}", headers=READER_PB)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    r = await c.get("/v1/network/figures", headers=READER_BI)
    assert r.status_code == 200, r.text
    network = r.json()
    assert (network["source"], network["k"], network["period"]) == ("registry", 5, YEAR)
    rows = {row["label"]: row for row in network["municipalities"]}
    assert [row["label"] for row in network["municipalities"]] == sorted(rows)
    pb = rows["Paderborn"]
    assert (pb["ags"], pb["named"], pb["kind"], pb["size_class"]) == (PADERBORN, True, "Stadt", "100k_500k")
    g = pb["figures"]
    assert (g["members_active"], g["members_new"], g["organisations"]) == (7, 8, None)
    # One person under 18 and four empty bands (sum 1 < k): the 6 in 30-49 must go too, or 7 - 6 = 1 is known.
    assert set(g["members_by_age_band"].values()) == {None}
    assert set(g["members_by_field"].values()) == {None}
    assert g["hours_total"] == 23.0  # six people contributed
    assert set(g["hours_by_field"].values()) == {None}  # kultur has one contributor; sport would give it away
    hv = rows["Gemeinde, 10.000–20.000 Einw."]
    assert (hv["ags"], hv["named"], hv["size_class"]) == (None, False, "10k_20k")
    assert hv["figures"]["members_active"] == 6
    assert network["network"]["members_active"]["n"] == 2  # Bielefeld has none: 0 < k is not published
    assert network["network"]["members_active"]["median"] is None  # fewer than k published values

    raw = r.text
    r = await c.get(f"/v1/network/figures?period={YEAR}&format=csv", headers=READER_BI)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert [row["label"] for row in table[:3]] == [row["label"] for row in network["municipalities"]]
    assert table[[row["label"] for row in table].index("Paderborn")]["hours_total"] == "23,0"
    by_accept = await c.get("/v1/network/figures", headers={**READER_BI, "Accept": "text/csv"})
    assert by_accept.content == r.content
    for body in (raw, r.content.decode("utf-8-sig")):
        for secret in ("Hövelhof", HOEVELHOF):
            assert secret not in body, "a municipality that opted out is named"
        for secret in (*seeded["ids"], seeded["org"], "Schmidt", "example.org"):
            assert secret not in body, "member-level data in the network's answer"


async def test_network_figures_need_a_network_member(registry: Registry) -> None:
    """Without a token: 401; a connected system (no reader role): 403; a bad period: 422 problem+json."""
    c = registry.client
    assert (await c.get("/v1/network/figures")).status_code == 401
    assert (await c.get("/v1/network/figures", headers=auth_header([PADERBORN], "system"))).status_code == 403
    r = await c.get("/v1/network/figures?period=2026-Q0", headers=ADMIN)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await c.get("/v1/network/figures?period=2026-Q4", headers=ADMIN)).status_code == 200

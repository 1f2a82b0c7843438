"""Seeds a realistic demo municipality and walks the journey against the running platform (`make up`).

Paderborn with a few organisations and a few hundred members with hours; an Ehrenamtsempfang on
5 December with invitations for members with at least 200 hours in the last 12 months; German
e-mails in Mailpit; one RSVP accepted with a guest. Prints progress and where to look.
Names are generated; no real person's data.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
import uuid
from typing import Any

import httpx

from engagiert.shared.testing.tokens import auth_header

PADERBORN = "05774032"
GIVEN = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Lena", "Mats",
         "Nora", "Ole", "Paula", "Quirin", "Rosa", "Simon", "Tessa", "Umut", "Vera", "Wim", "Yara", "Zeynep"]  # fmt: skip
FAMILY = ["Becker", "Demir", "Fischer", "Hoffmann", "Kaya", "Koch", "Krüger", "Lange", "Meyer", "Neumann",
          "Richter", "Schäfer", "Schmidt", "Schulz", "Wagner", "Weber", "Wolf", "Zimmermann"]  # fmt: skip
ORGS = [("SC Paderborn Jugend", "Verein", "Sport"), ("Paderborner Tafel", "Initiative", "Soziales"),
        ("Freiwillige Feuerwehr Paderborn", "Verein", "Feuerwehr/Katastrophenschutz"),
        ("Kulturwerkstatt Paderborn", "Verein", "Kultur"), ("Freiwilligenagentur Paderborn", "Freiwilligenagentur", "Soziales")]  # fmt: skip


def step(text: str) -> None:
    """Print a progress line."""
    print(f"==> {text}", flush=True)


def main() -> int:
    """Seed the demo and walk the journey."""
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--members", type=int, default=300)
    # The same port variables as deploy/local/stack.sh (and `make up`) use.
    port = lambda name, default: os.environ.get(name, default)  # noqa: E731
    parser.add_argument("--registry", default=f"http://127.0.0.1:{port('REGISTRY_PORT', '8001')}")
    parser.add_argument("--events", default=f"http://127.0.0.1:{port('EVENTS_PORT', '8002')}")
    parser.add_argument("--notifications", default=f"http://127.0.0.1:{port('NOTIFICATIONS_PORT', '8003')}")
    parser.add_argument("--mailpit", default=f"http://127.0.0.1:{port('MAILPIT_HTTP_PORT', '8025')}")
    args = parser.parse_args()
    rnd = random.Random(5122025)
    run = uuid.uuid4().hex[:6]
    admin, staff = auth_header(["*"], "network-admin"), auth_header([PADERBORN], "staff")
    base = f"/v1/municipalities/{PADERBORN}"
    reg = httpx.Client(base_url=args.registry, timeout=60)
    ev = httpx.Client(base_url=args.events, timeout=120)

    step("Stadt Paderborn (AGS 05774032)")
    r = reg.post("/v1/municipalities", headers=admin, json={
        "ags": PADERBORN, "name": "Stadt Paderborn", "kind": "Stadt",
        "contact_point_name": "Anlaufstelle für ehrenamtliches Engagement",
        "contact_point_email": "ehrenamt@paderborn.example.org"})  # fmt: skip
    if r.status_code not in (201, 409):
        print(r.text, file=sys.stderr)
        return 1
    step(f"{len(ORGS)} organisations")
    orgs = []
    for name, kind, field in ORGS:
        resp = reg.post(f"{base}/organisations", headers=staff, json={"name": name, "kind": kind, "fields": [field]})
        resp.raise_for_status()
        orgs.append(resp.json())
    step(f"{args.members} members with hours")
    hours: list[dict[str, Any]] = []
    for i in range(args.members):
        org = rnd.choice(orgs)
        given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
        body = {
            "given_name": given, "family_name": f"{family}-{run}{i}",
            "date_of_birth": f"{rnd.randint(1945, 2008)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
            "contact": {"email": f"{given.lower()}.{i}.{run}@demo.example.org"},
            "engagements": [{"organisation_id": org["id"], "field": org["fields"][0], "since": f"{rnd.randint(1995, 2025)}-01-01"}],
        }  # fmt: skip
        if rnd.random() < 0.9:
            body["consent"] = {"channels": ["email"], "source": "Demo"}
        resp = reg.post(f"{base}/members", headers=staff, json=body)
        resp.raise_for_status()
        member = resp.json()
        member_id = member.get("id") or member["member_id"]
        hours.append({"member_id": member_id, "hours": float(rnd.choice([20, 60, 120, 180, 210, 260, 320])),
                      "date_from": "2026-06-01"})  # fmt: skip
    for i in range(0, len(hours), 200):
        reg.post(f"{base}/hours", headers=staff, json=hours[i : i + 200]).raise_for_status()
    eligible = {h["member_id"] for h in hours if h["hours"] >= 200}

    step("Ehrenamtsempfang on 5 December")
    event = ev.post(f"{base}/events", headers=staff, json={
        "kind": "Ehrenamtsempfang", "title": "Empfang zum Tag des Ehrenamts", "starts_at": "2026-12-05T17:00:00+01:00",
        "venue": "Historisches Rathaus Paderborn", "capacity": 150, "guests_per_invitee": 1,
        "rsvp_deadline": "2026-12-01T23:59:00+01:00", "status": "scheduled"}).json()  # fmt: skip
    event_id = event.get("id") or event.get("event_id")
    criteria = {"min_hours_last_12_months": 200}
    step(f"waiting for the events service to know all {len(eligible)} eligible members")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        preview = ev.post(f"{base}/events/{event_id}/invitations/preview", headers=staff, json=criteria)
        if sum(1 for m in eligible if m in preview.text) == len(eligible):
            break
        time.sleep(1)
    step("issuing invitations")
    print(ev.post(f"{base}/events/{event_id}/invitations/issue", headers=staff, json=criteria).text[:300])
    step("waiting for the first e-mail in Mailpit")
    mail = httpx.Client(base_url=args.mailpit, timeout=30)
    link = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and link is None:
        found = mail.get("/api/v1/search", params={"query": f"{run}@demo.example.org"}).json()
        for msg in found.get("messages", [])[:1]:
            text = mail.get(f"/api/v1/message/{msg['ID']}").json()["Text"]
            match = re.search(r"https?://\S+/rsvp/[A-Za-z0-9._~-]+", text)
            link = match.group(0) if match else None
        time.sleep(1)
    if link:
        step("accepting one invitation with one guest")
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        ev.post(path, data={"answer": "accept", "guests": "1"})
    print()
    print("Where to look:")
    print(f"  mails          {args.mailpit}/")
    print(f"  registry API   {args.registry}/docs   (token: make token)")
    print(f"  events API     {args.events}/docs     event {event_id}")
    print(f"  RSVP page      {link or '(no e-mail yet)'}")
    print(f"  notifications  {args.notifications}/docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Seeds a realistic demo municipality and walks the journey against the running platform (`make up`).

Paderborn with a few organisations and a few hundred members with hours; an Ehrenamtsempfang on
5 December with invitations for members with at least 200 hours in the last 12 months; German
e-mails in Mailpit; one RSVP accepted with a guest. Then it checks the letters as a member meets
them (the sender names the municipality, Reply-To, "5. Dezember" and "17:00", the venue, a real RSVP
link, a calendar entry at 17:00 Europe/Berlin, Mailpit's HTML check at or above 85 %, no broken link,
a confirmation without an English word) and exits 1 when one fails.
Prints progress and where to look. Names are generated; no real person's data.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from engagiert.shared.testing.tokens import auth_header

PADERBORN = "05774032"
BERLIN = ZoneInfo("Europe/Berlin")
PROFILE = {
    "name": "Stadt Paderborn",
    "kind": "Stadt",
    "contact_point_name": "Anlaufstelle für ehrenamtliches Engagement",
    "contact_point_email": "ehrenamt@paderborn.example.org",
    "contact_point_phone": "05251 88-11000",
    "postal_address": {"street": "Am Abdinghof 11", "postal_code": "33098", "city": "Paderborn"},
}
SENDER = "Stadt Paderborn – Anlaufstelle für ehrenamtliches Engagement"
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

    step("Stadt Paderborn (AGS 05774032) with its contact point")
    r = reg.post("/v1/municipalities", headers=admin, json={"ags": PADERBORN, **PROFILE})
    if r.status_code == 409:  # from an earlier run: bring its profile up to date (published again)
        r = reg.patch(f"/v1/municipalities/{PADERBORN}", headers=admin, json=PROFILE)
    if r.status_code not in (200, 201):
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

    starts = next_fifth_of_december()
    step(f"Ehrenamtsempfang on {starts:%d.%m.%Y %H:%M} (Europe/Berlin)")
    # The RSVP deadline: 23:59 three days before, or an hour before the start when that has passed.
    deadline_at = (starts - timedelta(days=3)).replace(hour=23, minute=59)
    if deadline_at <= datetime.now(BERLIN):
        deadline_at = starts - timedelta(hours=1)
    event = ev.post(f"{base}/events", headers=staff, json={
        "kind": "Tag des Ehrenamts", "title": "Empfang zum Tag des Ehrenamts", "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(), "venue": "Historisches Rathaus Paderborn",
        "venue_address": "Rathausplatz 1, 33098 Paderborn",
        "notes": "Der Saal ist barrierefrei über den Eingang am Marienplatz erreichbar.",
        "capacity": 150, "guests_per_invitee": 1,
        "rsvp_deadline": deadline_at.isoformat(),
        "status": "scheduled"}).json()  # fmt: skip
    event_id = event.get("id") or event.get("event_id")
    criteria = {"min_hours_last_12_months": 200}
    step(f"waiting for the events service to know all {len(eligible)} eligible members")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        preview = ev.post(f"{base}/events/{event_id}/invitations/preview", headers=staff, json=criteria)
        if sum(1 for m in eligible if m in preview.text) == len(eligible):
            break
        time.sleep(1)
    step("issuing invitations")
    print(ev.post(f"{base}/events/{event_id}/invitations/issue", headers=staff, json=criteria).text[:300])
    step("waiting for the first e-mail in Mailpit")
    mail = httpx.Client(base_url=args.mailpit, timeout=60)
    link, invitation, address = None, None, None
    deadline = time.monotonic() + 300  # a busy members topic delays the contacts (requests wait for them)
    while time.monotonic() < deadline and invitation is None:
        found = mail.get("/api/v1/search", params={"query": f"{run}@demo.example.org"}).json()
        for msg in found.get("messages", []):
            if msg["From"]["Name"] == SENDER and msg["Subject"].startswith("Einladung"):
                invitation, address = msg, msg["To"][0]["Address"]
                break
        time.sleep(1)
    failures = 0
    if invitation is not None:
        step("checking the invitation as a member meets it")
        failures += report(check_invitation(mail, invitation["ID"]))
        text = mail.get(f"/api/v1/message/{invitation['ID']}").json()["Text"]
        match = re.search(r"https?://\S+/rsvp/[A-Za-z0-9._~-]+", text)
        link = match.group(0) if match else None
    else:
        print(f"  ✗ no invitation from {SENDER!r} arrived", flush=True)
        failures += 1
    if link and address:
        step("accepting one invitation with one guest")
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        ev.post(path, data={"answer": "accept", "guests": "1"})
        step("checking the confirmation")
        failures += report(check_confirmation(mail, address))
    print()
    print("Where to look:")
    print(f"  mails          {args.mailpit}/")
    print(f"  registry API   {args.registry}/docs   (token: make token)")
    print(f"  events API     {args.events}/docs     event {event_id}")
    print(f"  RSVP page      {link or '(no e-mail yet)'}")
    print(f"  notifications  {args.notifications}/docs")
    return 1 if failures else 0


def next_fifth_of_december(today: date | None = None) -> datetime:
    """Return 17:00 Europe/Berlin on the next 5 December (this year's until it has passed)."""
    today = today or datetime.now(BERLIN).date()
    year = today.year if today <= date(today.year, 12, 5) else today.year + 1
    return datetime(year, 12, 5, 17, 0, tzinfo=BERLIN)


def report(checks: list[tuple[str, bool, str]]) -> int:
    """Print each check; return how many failed."""
    for name, ok, detail in checks:
        print(f"  {'✓' if ok else '✗'} {name}{': ' + detail if detail else ''}", flush=True)
    return sum(1 for _, ok, _ in checks if not ok)


def check_invitation(mail: httpx.Client, message_id: str) -> list[tuple[str, bool, str]]:
    """Return the checks of the invitation: sender, Reply-To, date, time, venue, link, calendar, HTML and links."""
    msg = mail.get(f"/api/v1/message/{message_id}").json()
    text, html = msg["Text"], msg["HTML"]
    reply_to = [a["Address"] for a in msg.get("ReplyTo") or []]
    calendars = [a for a in msg.get("Attachments", []) if a["ContentType"].startswith("text/calendar")]
    ics = mail.get(f"/api/v1/message/{message_id}/part/{calendars[0]['PartID']}").text if calendars else ""
    dtstart = re.search(r"^DTSTART;TZID=([^:]+):\d{8}T(\d{4})", ics, re.MULTILINE)
    html_check = mail.get(f"/api/v1/message/{message_id}/html-check").json()
    supported = float(html_check["Total"]["Supported"])
    links = mail.get(f"/api/v1/message/{message_id}/link-check").json()
    broken = [
        f"{x['URL']} {x['StatusCode']}"
        for x in links.get("Links", [])
        if x.get("StatusCode", 0) >= 400 or x.get("StatusCode") == 0
    ]
    return [
        ("the sender names the municipality", msg["From"]["Name"] == SENDER, msg["From"]["Name"]),
        ("Reply-To is the contact point", reply_to == [PROFILE["contact_point_email"]], ", ".join(reply_to)),
        ('"5. Dezember" and "17:00"', "5. Dezember" in text and "17:00" in text, ""),
        ("the venue", "Historisches Rathaus Paderborn" in text and "Historisches Rathaus Paderborn" in html, ""),
        ("a real RSVP link", bool(re.search(r'<a href="https?://[^"]+/rsvp/', html)), ""),
        ("a text/calendar part at 17:00 Europe/Berlin", bool(dtstart) and dtstart.group(1) == "Europe/Berlin" and dtstart.group(2) == "1700", dtstart.group(0) if dtstart else "none"),
        ("Mailpit's HTML check at least 85 %", supported >= 85, f"{supported:.1f} %"),
        ("no broken link", not broken and links.get("Errors", 0) == 0, "; ".join(broken) or f"{len(links.get('Links', []))} links checked"),
    ]  # fmt: skip


def check_confirmation(mail: httpx.Client, address: str) -> list[tuple[str, bool, str]]:
    """Return the checks of the confirmation of an acceptance: it arrives, in German only."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = mail.get("/api/v1/search", params={"query": f"to:{address}"}).json()
        for msg in found.get("messages", []):
            if msg["From"]["Name"] == SENDER and msg["Subject"].startswith("Zusage"):
                text = mail.get(f"/api/v1/message/{msg['ID']}").json()["Text"]
                english = [w for w in ("accepted", "declined", "waitlisted", "guest", "Your") if w in text]
                return [
                    ("the confirmation arrived", True, msg["Subject"]),
                    ("it has no English word", not english, ", ".join(english)),
                ]
        time.sleep(1)
    return [("the confirmation arrived", False, "none within 90 s")]


if __name__ == "__main__":
    raise SystemExit(main())

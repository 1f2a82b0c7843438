"""Unsubscribe and event-changed mails on the real stack, the three services running as processes.

One-click unsubscribe (RFC 8058): an invitation in Mailpit carries ``List-Unsubscribe`` and
``List-Unsubscribe-Post``; POSTing ``List-Unsubscribe=One-Click`` to its link withdraws the
e-mail consent at the registry (notifications sends it the command over Kafka), and the next
invitation is suppressed; a tampered link answers 4xx; a transactional mail has no such header.
Event-changed: a new start time mails each open invitee the new German date with the calendar
entry of the invitation (same UID) at SEQUENCE 1, a second change SEQUENCE 2, capacity nothing.

Mails are told apart from those of the shared stack's own notifications service (it reads the
same topics) by the Message-ID domain of this test's notifications process.
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest
from playwright.async_api import async_playwright, expect

from engagiert.shared import topics
from engagiert.shared.signing import unb64url
from engagiert.shared.testing import ServiceProcess, StackEndpoints, auth_header, fresh_registry, skip_history
from engagiert.shared.testing import eventually as _eventually
from engagiert.shared.testing.keycloak import Keycloak, bearer

# Three service processes, Mailpit's checks and a browser: about 2 minutes alone, 5 on a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PADERBORN = "05774032"
CHROMIUM = "/usr/bin/chromium"  # Debian's package
CONSUMES = {
    "registry": [topics.REGISTRY_INBOUND],
    "events": [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT],
    "notifications": [topics.NOTIFICATIONS_REQUESTS, topics.REGISTRY_MEMBERS],
}


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 90.0, what: str = "") -> Any:
    """Wait every 0.5 s; a service not answering yet counts as not yet."""
    return await _eventually(
        check, timeout=timeout, what=what, every=0.5, retry_on=(httpx.HTTPError, KeyError, AssertionError)
    )


def headers(stack: StackEndpoints) -> tuple[dict[str, str], dict[str, str]]:
    """Return the network admin's and Paderborn staff's headers (Keycloak's tokens when it runs)."""
    if stack.keycloak_issuer is None:
        return auth_header(["*"], "network-admin"), auth_header([PADERBORN], "staff")
    keycloak = Keycloak.from_issuer(stack.keycloak_issuer)
    return bearer(keycloak.password_token("network-admin")), bearer(keycloak.password_token("paderborn-staff"))


@pytest.fixture(scope="module")
def platform(stack: StackEndpoints) -> Iterator[dict[str, Any]]:
    """Run registry, events and notifications as uvicorn processes with databases and groups of their own."""
    run = uuid.uuid4().hex[:8]
    env = {**stack.env(), "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}
    for name in CONSUMES:
        env[f"{name.upper()}_MONGODB_DATABASE"] = f"unsub_{name}_{run}"
        env[f"{name.upper()}_CONSUMER_GROUP"] = f"unsub-{name}-{run}"
        asyncio.run(skip_history(stack.kafka_bootstrap_servers, f"unsub-{name}-{run}", CONSUMES[name]))
    env.update(asyncio.run(fresh_registry(stack.kafka_bootstrap_servers, group=f"unsub-registry-{run}", run=run)))
    ports = {name: ServiceProcess(f"engagiert.{name}.main", env={}).port for name in CONSUMES}
    env["EVENTS_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{ports['events']}"
    env["NOTIFICATIONS_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{ports['notifications']}"
    env["NOTIFICATIONS_MESSAGE_ID_DOMAIN"] = f"unsub-{run}.test"
    env["NOTIFICATIONS_SENDER_POLL_SECONDS"] = "0.2"
    env["REGISTRY_PURGE_INBOUND_RECORDS"] = "false"  # the inbound topic is shared with the stack's registry
    env["MEMBER_KEYS_URL"] = f"http://127.0.0.1:{ports['registry']}"  # it holds the members' keys
    procs: dict[str, ServiceProcess] = {}
    try:
        for name in CONSUMES:
            procs[name] = ServiceProcess(f"engagiert.{name}.main", env=env, port=ports[name]).start(wait_ready=90)
        yield {"procs": procs, "run": run, "stack": stack, "domain": f"unsub-{run}.test"}
    finally:
        for proc in procs.values():
            proc.stop()


class Mailbox:
    """Reads the mails this test's notifications process sent to an address (raw, parsed)."""

    def __init__(self, client: httpx.AsyncClient, domain: str) -> None:
        self.client = client
        self.domain = domain

    async def messages(self, address: str, subject_start: str = "") -> list[Message]:
        """Return the parsed mails to ``address`` from our process whose subject starts so, oldest first."""
        found = (await self.client.get("/api/v1/search", params={"query": f"to:{address}", "limit": 50})).json()
        mails: list[Message] = []
        for summary in reversed(found.get("messages") or []):
            if not summary["Subject"].startswith(subject_start):
                continue
            raw = (await self.client.get(f"/api/v1/message/{summary['ID']}/raw")).text
            message = email.message_from_string(raw)
            if str(message["Message-ID"]).endswith(f"@{self.domain}>"):
                message["X-Test-Mailpit-ID"] = summary["ID"]
                mails.append(message)
        return mails

    async def check(self, message: Message, what: str) -> dict[str, Any]:
        """Return Mailpit's own check of a mail: its summary, ``html-check`` or ``link-check``."""
        path = f"/api/v1/message/{message['X-Test-Mailpit-ID']}" + ("" if what == "summary" else f"/{what}")
        return dict((await self.client.get(path, timeout=60)).json())


def part(message: Message, content_type: str) -> str:
    """Return the decoded text of the first part of ``content_type``."""
    for p in message.walk():
        if p.get_content_type() == content_type:
            payload = p.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(p.get_content_charset() or "utf-8")
    raise AssertionError(f"no {content_type} part")


def calendar_of(message: Message) -> icalendar.Event:
    """Return the VEVENT of a mail's text/calendar attachment."""
    cal = icalendar.Calendar.from_ical(part(message, "text/calendar"))
    [vevent] = list(cal.walk("VEVENT"))
    return vevent


async def test_one_click_unsubscribe_and_event_changed_mails(platform: dict[str, Any], tmp_path: Path) -> None:
    """Unsubscribe withdraws e-mail consent at the registry and later invitations are suppressed; changes mail once each."""
    procs, run, stack = platform["procs"], platform["run"], platform["stack"]
    admin, staff = headers(stack)
    reg = httpx.AsyncClient(base_url=procs["registry"].url, timeout=30)
    ev = httpx.AsyncClient(base_url=procs["events"].url, timeout=30)
    no = httpx.AsyncClient(base_url=procs["notifications"].url, timeout=30)
    mailbox = Mailbox(httpx.AsyncClient(base_url=stack.mailpit_api_url, timeout=30), platform["domain"])
    base = f"/v1/municipalities/{PADERBORN}"

    r = await reg.post("/v1/municipalities", headers=admin, json={
        "ags": PADERBORN, "name": "Stadt Paderborn", "kind": "Stadt",
        "contact_point_name": "Anlaufstelle für ehrenamtliches Engagement",
        "contact_point_email": "ehrenamt@paderborn.example.org", "contact_point_phone": "05251 88-11000"})  # fmt: skip
    assert r.status_code in (201, 409), r.text
    members: dict[str, str] = {}
    for key in ("anna", "clara", "dieter", "emil"):
        body = {"given_name": key.capitalize(), "family_name": f"Unsub{run}", "date_of_birth": "1970-05-01",
                "contact": {"email": f"{key}.{run}@unsub.example.org"},
                "consent": {"channels": ["email"], "source": "Formular Anlaufstelle"}}  # fmt: skip
        resp = await reg.post(f"{base}/members", headers=staff, json=body)
        assert resp.status_code == 201, resp.text
        members[key] = resp.json()["member_id"]

    async def new_event(title: str, invite: list[str]) -> str:
        event = await ev.post(f"{base}/events", headers=staff, json={
            "kind": "Ehrenamtsempfang", "title": title, "starts_at": "2026-12-05T17:00:00+01:00",
            "venue": "Historisches Rathaus Paderborn", "venue_address": "Rathausplatz 1, 33098 Paderborn",
            "capacity": 50, "guests_per_invitee": 1, "rsvp_deadline": "2026-12-01T23:59:00+01:00",
            "status": "scheduled"})  # fmt: skip
        assert event.status_code == 201, event.text
        event_id = str(event.json()["id"])
        criteria = {"member_ids": [members[k] for k in invite]}

        async def issued() -> bool:  # the events read model learns the members from the registry's facts
            resp = await ev.post(f"{base}/events/{event_id}/invitations/issue", headers=staff, json=criteria)
            return resp.status_code == 200 and resp.json()["invited"] + resp.json()["already_invited"] == len(invite)

        await eventually(issued, what="the invitations to be issued")
        return event_id

    # 1. The invitation carries both headers and the visible link; its one-click POST withdraws the consent.
    first = f"Empfang {run}"
    await new_event(first, ["anna"])
    anna = f"anna.{run}@unsub.example.org"
    [invitation] = await eventually(lambda: mailbox.messages(anna, "Einladung"), what="Anna's invitation")
    header = re.sub(r"\s+", "", str(invitation["List-Unsubscribe"]))  # unfolded, as mail programs read it
    assert invitation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(http://127\.0\.0\.1:\d+/unsubscribe/([A-Za-z0-9._-]+))>", header)
    assert match, header
    link, token = match.group(1), match.group(2)
    checked = (await mailbox.check(invitation, "summary"))["ListUnsubscribe"]
    assert checked["Errors"] == "", checked
    assert checked["Links"] == [link], checked
    assert checked["HeaderPost"] == "List-Unsubscribe=One-Click", checked
    # The link names municipality, channel and member id (signed), and nothing personal: no name, no address.
    payload = unb64url(token.split(".")[0]).decode()
    assert re.fullmatch(rf"{PADERBORN}:email:{re.escape(members['anna'])}\|\d+", payload), payload
    html, text = part(invitation, "text/html"), part(invitation, "text/plain")
    assert f'<a href="{link}"' in html
    assert "Keine E-Mails mehr erhalten" in html
    assert f"Keine E-Mails mehr erhalten: {link}" in text

    assert (await mailbox.check(invitation, "html-check"))["Total"]["Supported"] >= 85
    links = await mailbox.check(invitation, "link-check")
    statuses = [(re.sub(r"/[^/]*$", "/…", link["URL"]), link["StatusCode"], link["Status"]) for link in links["Links"]]
    assert links["Errors"] == 0, statuses  # the RSVP and the unsubscribe link answer (Mailpit asks without a POST)

    head = await no.head(link)
    assert head.status_code == 200
    page = await no.get(link)
    assert page.status_code == 200
    assert 'lang="de"' in page.text
    assert "E-Mails abbestellen" in page.text
    english = await no.get(link, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in english.text
    tampered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for bad in (tampered, token + "x", "kaputt"):
        refused = await no.post(f"/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"})
        assert refused.status_code in (400, 403), (bad, refused.status_code)
        assert "Dieser Link funktioniert nicht" in refused.text
    consent = (await reg.get(f"{base}/members/{members['anna']}", headers=staff)).json()["consent"]
    assert consent["channels"] == ["email"], "neither GET, HEAD nor a bad link changed anything"

    for _ in range(2):  # a mail program may POST twice
        done = await no.post(link, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200, done.text
        assert "Sie sind abgemeldet" in done.text

    async def withdrawn() -> dict[str, Any] | None:
        member = (await reg.get(f"{base}/members/{members['anna']}", headers=staff)).json()
        return member if member["consent"]["channels"] == [] else None

    member = await eventually(withdrawn, what="the registry to withdraw Anna's e-mail consent")
    assert member["consent"]["withdrawn_at"] is not None
    assert member["revision"] == 2, "the command applied once"

    # 2. The next invitation to Anna is suppressed (the registry's fact reached notifications' contacts).
    second = f"Feierstunde {run}"
    await new_event(second, ["anna"])

    async def suppressed() -> list[dict[str, Any]]:
        log = (await no.get(f"{base}/deliveries", headers=staff, params={"member_id": members["anna"]})).json()
        return [d for d in log if d["status"] == "suppressed" and d["reason"] == "no-consent"]

    [entry] = await eventually(suppressed, what="the second invitation to be suppressed")
    assert entry["template"] == "invitation"
    assert len(await mailbox.messages(anna, "Einladung")) == 1

    # 3. Clara accepts, Dieter does not answer, Emil declines; the start moves from 17:00 to 18:00.
    third = f"Ehrenamtsempfang {run}"
    event_id = await new_event(third, ["clara", "dieter", "emil"])
    addresses = {k: f"{k}.{run}@unsub.example.org" for k in ("clara", "dieter", "emil")}
    invitations: dict[str, Message] = {}
    for key, address in addresses.items():
        [invitations[key]] = await eventually(lambda a=address: mailbox.messages(a, "Einladung"), what=key)
    for key, answer in (("clara", "accept"), ("emil", "decline")):
        rsvp = re.search(r"http://127\.0\.0\.1:\d+/rsvp/[A-Za-z0-9._-]+", part(invitations[key], "text/plain"))
        assert rsvp, key
        answered = await ev.post(rsvp.group(0), data={"answer": answer, "guests": "0"})
        assert answered.status_code == 200, answered.text
    [confirmation] = await eventually(lambda: mailbox.messages(addresses["clara"], "Zusage"), what="the confirmation")
    assert confirmation["List-Unsubscribe"] is None, "a transactional mail has no List-Unsubscribe"
    assert "Keine E-Mails mehr erhalten" not in part(confirmation, "text/plain")

    patched = await ev.patch(
        f"{base}/events/{event_id}", headers=staff, json={"starts_at": "2026-12-05T18:00:00+01:00"}
    )
    assert patched.status_code == 200, patched.text
    changed: dict[str, Message] = {}
    for key in ("clara", "dieter"):
        [changed[key]] = await eventually(lambda k=key: mailbox.messages(addresses[k], "Geänderter Termin"), what=key)
        mail = changed[key]
        assert "Samstag, 5. Dezember 2026, 18:00 Uhr" in part(mail, "text/plain")
        assert "Samstag, 5. Dezember 2026, 18:00 Uhr" in part(mail, "text/html")
        assert mail["List-Unsubscribe"] is None, "an event the member is invited to changed: transactional"
        if key == "clara":
            assert (await mailbox.check(mail, "html-check"))["Total"]["Supported"] >= 85
        entry, before = calendar_of(mail), calendar_of(invitations[key])
        assert str(entry["UID"]) == str(before["UID"])
        assert (int(before.get("SEQUENCE", 0)), int(entry["SEQUENCE"])) == (0, 1)
        assert entry.decoded("DTSTART").hour == 18
        assert str(entry.decoded("DTSTART").tzinfo) == "Europe/Berlin"

    # 4. A second change: SEQUENCE 2; then capacity alone: no mail.
    patched = await ev.patch(
        f"{base}/events/{event_id}", headers=staff, json={"starts_at": "2026-12-05T18:30:00+01:00"}
    )
    assert patched.status_code == 200, patched.text
    for key in ("clara", "dieter"):
        mails = await eventually(
            lambda k=key: _at_least(mailbox.messages(addresses[k], "Geänderter Termin"), 2), what=f"{key}'s second"
        )
        assert int(calendar_of(mails[1])["SEQUENCE"]) == 2
        assert "18:30 Uhr" in part(mails[1], "text/plain")
    patched = await ev.patch(f"{base}/events/{event_id}", headers=staff, json={"capacity": 60})
    assert patched.status_code == 200, patched.text
    await asyncio.sleep(8)  # what a capacity change would have sent arrives in about 2 s
    counts = {k: len(await mailbox.messages(a, "Geänderter Termin")) for k, a in addresses.items()}
    assert counts == {"clara": 2, "dieter": 2, "emil": 0}, counts

    # 5. The unsubscribe page as a volunteer on a phone sees it (375 px), and its button.
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)  # set it to keep them for review
    dieter_link = re.sub(r"\s+", "", str(invitations["dieter"]["List-Unsubscribe"])).strip("<>")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for lang in ("de", "en"):
                context = await browser.new_context(locale="de-DE", viewport={"width": 375, "height": 740})
                page = await context.new_page()
                response = await page.goto(f"{dieter_link}?lang={lang}")
                assert response is not None
                assert response.status == 200
                await expect(page.locator("html")).to_have_attribute("lang", lang)
                await page.screenshot(path=str(shots / f"unsubscribe.{lang}.375.png"), full_page=True)
                if lang == "de":
                    await page.get_by_role("button", name="E-Mails abbestellen").click()
                    await expect(page.get_by_role("status")).to_contain_text("keine E-Mails mehr")
                    await page.screenshot(path=str(shots / "unsubscribe-done.de.375.png"), full_page=True)
                await context.close()
        finally:
            await browser.close()
    for c in (reg, ev, no, mailbox.client):
        await c.aclose()


async def _at_least(found: Awaitable[list[Message]], n: int) -> list[Message] | None:
    mails = await found
    return mails if len(mails) >= n else None

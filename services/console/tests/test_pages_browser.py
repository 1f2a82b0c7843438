"""Pages 5-8 in a real Chromium: events, invitations and check-in, honours, letters, network admin.

Signed in through Keycloak's own page (the conftest's fixtures), over the three services as
processes on the shared stack's Kafka, store and Mailpit.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from engagiert.console.testing import BIELEFELD, CONSUMES, PADERBORN, Platform
from engagiert.shared.testing import ServiceProcess, StackEndpoints, eventually, fresh_registry, skip_history
from engagiert.shared.testing.keycloak import LOCAL_ISSUER, LOCAL_PASSWORD, Keycloak, bearer

# The events service here consumes the shared stack's topics, where other sessions publish too:
# on a busy machine it can take minutes to reach this module's members.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

SignedIn = Callable[[str], Awaitable[BrowserContext]]
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
"""A folder: the audit also saves each page's screenshot there, at desktop width and at 375 px."""
PUBLIC = "http://127.0.0.1:8000"
"""The console's address for the browser: the local realm redirects to 127.0.0.1:8000 only."""
BASE = f"/m/{PADERBORN}"
GUESTS = ("Greta", "Hanna", "Ilse")
"""Given names of the members invited (capacity 2: the third waits)."""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


# -- a console of this module's own, signed in through the realm's one address -------------------------
#
# The local realm lets the console sign in only at 127.0.0.1:8000 (its redirect URI), and another
# test session may hold that port. This module's console listens on a free port and names
# 127.0.0.1:8000 as its public address; the browser opens the console at its own port, and each
# context routes 127.0.0.1:8000 (only Keycloak's redirect back with the code comes there) to it.
# Keycloak's login page, the code, PKCE and the code exchange are the real ones; the session cookie
# is the host's (127.0.0.1), whatever the port.


@dataclass
class RoutedPlatform(Platform):
    """The services and a console reached at its own port, whose sign-in callback the browser routes to it."""

    volunteers: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def platform(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedPlatform]:
    """Run registry, events, notifications and a console as processes; Paderborn, Bielefeld and three members exist."""
    issuer = stack.keycloak_issuer or LOCAL_ISSUER
    try:
        httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5).raise_for_status()
    except httpx.HTTPError:
        pytest.fail(f"Keycloak does not answer at {issuer}: `bash deploy/local/stack.sh up` starts it")
    keycloak = Keycloak.from_issuer(issuer)
    log_dir = tmp_path_factory.mktemp("logs")
    run = uuid.uuid4().hex[:8]
    env = {
        **stack.env(),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "AUTH_JWKS_URL": keycloak.jwks_url(),
        "AUTH_ISSUER": issuer,
        "NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2",
    }
    for name in CONSUMES:
        env[f"{name.upper()}_MONGODB_DATABASE"] = f"pages_{name}_{run}"
        env[f"{name.upper()}_CONSUMER_GROUP"] = f"pages-{name}-{run}"
    procs: dict[str, ServiceProcess] = {}
    started: list[ServiceProcess] = []
    running: RoutedPlatform | None = None
    try:
        group = f"pages-registry-{run}"
        registry_env = {**env, **asyncio.run(fresh_registry(stack.kafka_bootstrap_servers, group=group, run=run))}
        procs["registry"] = ServiceProcess("engagiert.registry.main", env=registry_env, log_dir=log_dir)
        started.append(procs["registry"])
        procs["registry"].start(wait_ready=120)
        env["MEMBER_KEYS_URL"] = procs["registry"].url  # it holds the members' keys (crypto-shredding)
        _create_municipalities(procs["registry"].url, keycloak)
        # Other sessions may publish thousands of registry facts at any time. The consumers start
        # right before this module's members, so those are among the first records they read.
        for name in ("events", "notifications"):
            asyncio.run(skip_history(stack.kafka_bootstrap_servers, f"pages-{name}-{run}", CONSUMES[name]))
        volunteers = _register_volunteers(procs["registry"].url, run, keycloak)
        for name in ("events", "notifications"):
            procs[name] = ServiceProcess(f"engagiert.{name}.main", env=env, log_dir=log_dir)
            started.append(procs[name])
            procs[name].start(wait_ready=120)
        console_env = {
            **env,
            "CONSOLE_PUBLIC_BASE_URL": PUBLIC,
            "CONSOLE_OIDC_ISSUER": issuer,
            "CONSOLE_REGISTRY_URL": procs["registry"].url,
            "CONSOLE_EVENTS_URL": procs["events"].url,
            "CONSOLE_NOTIFICATIONS_URL": procs["notifications"].url,
        }
        console = ServiceProcess("engagiert.console.main", env=console_env, log_dir=log_dir)
        started.append(console)
        console.start(wait_ready=60)
        running = RoutedPlatform(
            procs=procs, console=console, run=run, env=env, keycloak=keycloak, volunteers=volunteers
        )
        yield running
    finally:
        if running is not None:
            running.stop()  # and drop the services' databases
        else:
            for proc in started:
                proc.stop()


def _create_municipalities(registry: str, keycloak: Keycloak) -> None:
    admin = bearer(keycloak.password_token("network-admin"))
    for ags, name in ((PADERBORN, "Paderborn"), (BIELEFELD, "Bielefeld")):
        created = httpx.post(
            registry + "/v1/municipalities", json={"ags": ags, "name": name, "kind": "Stadt"}, headers=admin, timeout=30
        )
        assert created.status_code == 201, created.text


async def sign_in(browser: Browser, platform: RoutedPlatform, username: str, **options: Any) -> BrowserContext:
    """Open the console, sign in on Keycloak's own login page as ``username``; return the signed-in context."""
    context = await browser.new_context(locale="de-DE", bypass_csp=True, **options)

    async def to_console(route: Route) -> None:
        await route.continue_(url=platform.url + route.request.url.removeprefix(PUBLIC))

    await context.route(re.compile(r"^http://127\.0\.0\.1:8000/"), to_console)
    page = await context.new_page()
    await page.goto(platform.url + "/")
    # Generous waits: Keycloak shares two busy cores with several test sessions.
    await page.wait_for_url(lambda url: url.startswith(platform.keycloak.url), timeout=90_000)
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(LOCAL_PASSWORD)
    await page.locator("#kc-login").click()
    await page.wait_for_url(lambda url: url.startswith(platform.url), timeout=90_000)
    await page.close()
    return context


@pytest.fixture(scope="module")
async def signed_in(platform: RoutedPlatform, browser: Browser) -> AsyncIterator[SignedIn]:
    """Return a maker of browser contexts signed in as a local user (once per user and module)."""
    contexts: dict[str, BrowserContext] = {}

    async def make(username: str) -> BrowserContext:
        if username not in contexts:
            contexts[username] = await sign_in(browser, platform, username)
        return contexts[username]

    yield make
    for context in contexts.values():
        await context.close()


@pytest.fixture
async def staff_page(signed_in: SignedIn) -> AsyncIterator[Page]:
    """Give a page of a context signed in as ``paderborn-staff``."""
    page = await (await signed_in("paderborn-staff")).new_page()
    yield page
    await page.close()


def _family(run: str) -> str:
    return f"Ehrenamt{run}"


def _register_volunteers(registry: str, run: str, keycloak: Keycloak) -> dict[str, Any]:
    """Register three members with e-mail consent and 220 hours (Ehrenamtskarte threshold: 200), in the registry."""
    headers = bearer(keycloak.password_token("paderborn-staff"))
    today = date.today()
    ids: dict[str, str] = {}
    # Other sessions publish Paderborn's members on the same topics: this module's members are told
    # apart by an organisation of their own, which the invitation criteria name.
    organisation = f"Kulturverein {run}"
    with httpx.Client(base_url=registry, headers=headers, timeout=30) as client:
        org = client.post(
            f"/v1/municipalities/{PADERBORN}/organisations", json={"name": organisation, "fields": ["Kultur"]}
        )
        assert org.status_code == 201, org.text
        for given in GUESTS:
            created = client.post(
                f"/v1/municipalities/{PADERBORN}/members",
                json={
                    "given_name": given,
                    "family_name": _family(run),
                    "date_of_birth": "1970-04-02",
                    "contact": {"email": f"{given.lower()}.{run}@example.org"},
                    "consent": {"channels": ["email"], "source": "Test"},
                    "engagements": [{"field": "Kultur", "since": "2010-01-01", "organisation_id": org.json()["id"]}],
                },
            )
            assert created.status_code == 201, created.text
            member_id = created.json()["member_id"]
            hours = client.post(
                f"/v1/municipalities/{PADERBORN}/members/{member_id}/hours",
                json={
                    "hours": 220,
                    "date_from": (today - timedelta(days=60)).isoformat(),
                    "date_to": (today - timedelta(days=2)).isoformat(),
                },
            )
            assert hours.status_code in (200, 201), hours.text
            ids[given] = member_id
    return {"ids": ids, "family": _family(run), "organisation": organisation}


@pytest.fixture(scope="module")
async def volunteers(platform: RoutedPlatform) -> dict[str, Any]:
    """Return the module's three members once the events service has proposed an Ehrenamtskarte for each."""
    found = platform.volunteers
    headers = bearer(platform.token("paderborn-staff"))
    async with httpx.AsyncClient(base_url=platform.service("events"), headers=headers, timeout=30) as client:

        async def proposed() -> bool:
            answer = await client.get(f"/v1/municipalities/{PADERBORN}/honours", params={"status": "proposed"})
            mine = {h["member_id"] for h in answer.json() if h["kind"] == "ehrenamtskarte"}
            return set(found["ids"].values()) <= mine

        await eventually(proposed, timeout=1500, what="the Ehrenamtskarte proposals")
    return found


async def _create_event(page: Page, platform: RoutedPlatform, title: str, *, capacity: int = 2) -> str:
    """Create a published event through the form; return its page's path."""
    starts = datetime.now(UTC) + timedelta(days=10)
    await page.goto(platform.url + f"{BASE}/events")
    await page.get_by_role("link", name="Neue Veranstaltung").click()
    await page.get_by_label("Art", exact=True).select_option("Ehrenamtsempfang")
    await page.get_by_label("Titel").fill(title)
    await page.get_by_label("Beginn").fill(starts.strftime("%Y-%m-%dT18:00"))
    await page.locator("#f-venue").fill("Rathaus Paderborn, Großer Saal")
    await page.get_by_label("Plätze").fill(str(capacity))
    await page.get_by_label("Begleitpersonen je Gast (höchstens)").fill("1")
    await page.get_by_label("Antwort bis").fill((starts - timedelta(days=5)).strftime("%Y-%m-%dT12:00"))
    await page.get_by_label("Gleich veröffentlichen (Einladungen möglich)").check()
    await page.get_by_role("button", name="Speichern").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(title)
    return urlsplit(page.url).path


async def _mails(platform: RoutedPlatform, subject: str) -> list[dict[str, Any]]:
    """Return Mailpit's messages whose subject starts so (the title carries the run: no other test's mail)."""
    async with httpx.AsyncClient(base_url=platform.env["MAILPIT_API_URL"], timeout=30) as client:
        found = await client.get("/api/v1/search", params={"query": f'subject:"{subject}"', "limit": 50})
        found.raise_for_status()
        return [m for m in found.json()["messages"] if m["Subject"].startswith(subject)]


@pytest.fixture(scope="module")
async def invited(platform: RoutedPlatform, signed_in: SignedIn, volunteers: dict[str, Any]) -> dict[str, Any]:
    """Create an event with two seats and invite the three volunteers through the console (the flow test's state)."""
    page = await (await signed_in("paderborn-staff")).new_page()
    title = f"Empfang {platform.run}"
    path = await _create_event(page, platform, title)
    await page.get_by_role("link", name="Einladen …").click()
    await page.get_by_label(volunteers["organisation"]).check()
    await page.get_by_label("Mindestens Stunden in den letzten 12 Monaten").fill("200")
    # htmx asks for the count as one types: no submit needed.
    preview = page.locator("#preview")
    await expect(preview).to_contain_text("3 Mitglieder passen.")
    await expect(preview).to_contain_text("Neu eingeladen würden 2, auf die Warteliste kämen 1")
    for given in GUESTS:
        await expect(preview.get_by_role("link", name=f"{volunteers['family']}, {given}")).to_be_visible()
    await preview.get_by_role("link", name="3 Einladungen versenden …").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Einladungen zu {title} versenden?")
    await expect(page.get_by_text("2 Mitglieder bekommen jetzt eine Einladung per E-Mail.")).to_be_visible()
    await expect(page.get_by_text("1 weitere kommen auf die Warteliste")).to_be_visible()
    await page.get_by_role("button", name="Jetzt 3 Einladungen versenden").click()
    await expect(page.locator(".flash")).to_have_text("2 Einladungen sind unterwegs, 1 auf der Warteliste.")
    await page.close()
    return {"path": path, "title": title}


async def test_create_event_preview_and_issue_invitations_the_mail_arrives(
    platform: RoutedPlatform, staff_page: Page, invited: dict[str, Any], volunteers: dict[str, Any]
) -> None:
    """The event page lists the invitations with status and waitlist place; the two invitations arrive in Mailpit."""
    await staff_page.goto(platform.url + invited["path"])
    table = staff_page.get_by_role("table", name="Einladungen")
    await expect(table.get_by_role("row")).to_have_count(4)  # header + 3
    waiting = table.locator("tbody tr").filter(has_text="Warteliste")
    await expect(waiting.locator("td").nth(3)).to_have_text("1")  # the first place of the waiting list
    await expect(table.locator("tbody tr").filter(has_text="eingeladen, offen")).to_have_count(2)
    subject = f"Einladung: {invited['title']}"
    mails = await eventually(lambda: _mails_if(platform, subject, 2), timeout=900, what="two invitations in Mailpit")
    recipients = sorted(m["To"][0]["Address"] for m in mails)
    expected = sorted(f"{g.lower()}.{platform.run}@example.org" for g in GUESTS)
    assert set(recipients) < set(expected), recipients
    # The delivery log shows them as sent.
    await staff_page.goto(platform.url + f"{BASE}/letters?status=sent")
    log = staff_page.get_by_role("table", name="Versandprotokoll")
    await expect(log.get_by_role("row", name=re.compile(volunteers["family"]))).to_have_count(2)


async def _mails_if(platform: RoutedPlatform, subject: str, count: int) -> list[dict[str, Any]] | None:
    mails = await _mails(platform, subject)
    return mails if len(mails) >= count else None


async def test_the_criteria_form_counts_with_javascript_off(
    platform: RoutedPlatform, browser: Browser, invited: dict[str, Any], volunteers: dict[str, Any]
) -> None:
    """Without JavaScript the plain submit shows the count and the members; those invited already are counted so."""
    context = await sign_in(browser, platform, "paderborn-staff", java_script_enabled=False)
    page = await context.new_page()
    await page.goto(platform.url + invited["path"] + "/invite")
    await page.get_by_label("Mindestens Stunden in den letzten 12 Monaten").fill("-5")
    await page.get_by_role("button", name="Auswahl zeigen").click()
    # The events service's refusal (ge=0) is named at its field, in German.
    await expect(page.locator("#f-min_hours_last_12_months-error")).to_have_text("Die Zahl ist zu klein.")
    await page.get_by_label("Mindestens Stunden in den letzten 12 Monaten").fill("200")
    await page.get_by_label(volunteers["organisation"]).check()
    await page.get_by_role("button", name="Auswahl zeigen").click()
    await expect(page.locator("#preview")).to_contain_text("3 Mitglieder passen.")
    await expect(page.locator("#preview")).to_contain_text("3 sind schon eingeladen")
    await context.close()


async def test_a_guest_is_checked_in_at_the_door_on_a_phone(
    platform: RoutedPlatform, signed_in: SignedIn, invited: dict[str, Any], volunteers: dict[str, Any]
) -> None:
    """Greta accepts by her e-mail's link; at 375 px staff find her by name and check her in with one tap."""
    subject = f"Einladung: {invited['title']}"
    mails = await eventually(lambda: _mails_if(platform, subject, 2), timeout=900, what="the invitations")
    async with httpx.AsyncClient(base_url=platform.env["MAILPIT_API_URL"], timeout=30) as mailpit:
        first = (await mailpit.get(f"/api/v1/message/{mails[0]['ID']}")).json()
    given = first["To"][0]["Address"].split(".")[0].capitalize()
    token = re.search(r"/rsvp/([A-Za-z0-9_=.-]+)", first["Text"])
    assert token, first["Text"]
    async with httpx.AsyncClient(base_url=platform.service("events"), timeout=30) as events:
        answer = await events.post(f"/rsvp/{token.group(1)}", data={"answer": "accept", "guests": "1"})
        assert answer.status_code == 200, answer.text

    page = await (await signed_in("paderborn-staff")).new_page()
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.goto(platform.url + invited["path"])
    await page.get_by_role("link", name="Einlass", exact=True).click()
    await expect(page.locator("#checkin-count")).to_have_text("0 von 1 Zugesagten sind da.")
    await page.get_by_label("Name").fill(given)
    await page.get_by_role("button", name="Suchen").click()
    name = f"{volunteers['family']}, {given}"
    row = page.get_by_role("listitem").filter(has_text=name)
    await expect(row).to_contain_text("+ 1 Begleitung")
    await row.get_by_role("button", name=f"Einchecken {name}").click()
    # htmx swaps the row and the count in place.
    await expect(row).to_contain_text("✓ da")
    await expect(page.locator("#checkin-count")).to_have_text("1 von 1 Zugesagten sind da.")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    await page.goto(platform.url + invited["path"])
    await expect(
        page.get_by_role("table", name="Einladungen").get_by_role("row", name=re.compile(name))
    ).to_contain_text("ja")
    csv = await page.request.get(platform.url + invited["path"] + "/venue.csv")
    assert csv.ok
    # The events service chooses the separator (',' since its CSV hardening; ';' before).
    assert re.search(rf"{volunteers['family']}[;,]{given}[;,]1[;,]ja", await csv.text())
    await page.close()


async def test_grant_a_proposed_ehrenamtskarte(
    platform: RoutedPlatform, staff_page: Page, volunteers: dict[str, Any]
) -> None:
    """The inbox says who and why; a reason is required to reject, a bad card number is named; granting shows the card."""
    run = platform.run
    name = f"{volunteers['family']}, Hanna"
    await staff_page.goto(platform.url + f"{BASE}/honours")
    inbox = staff_page.get_by_role("table", name="Neue Vorschläge")
    row = inbox.locator("tbody tr").filter(has_text=name).filter(has_text="Ehrenamtskarte NRW")
    await expect(row).to_contain_text("220 h in 12 Monaten (Schwelle 200 h)")
    await row.get_by_role("link", name=re.compile("^Entscheiden")).click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Ehrenamtskarte NRW für {name}")
    await staff_page.get_by_role("button", name="Ablehnen").click()
    await expect(staff_page.locator("#f-reason-error")).to_have_text("Bitte ausfüllen.")
    await staff_page.get_by_label("Kartennummer").fill("NRW 1")
    await staff_page.get_by_role("button", name="Verleihen").click()
    await expect(staff_page.locator("#f-card_number-error")).to_contain_text("Das Format stimmt nicht")
    await staff_page.get_by_label("Kartennummer").fill(f"NRW-{run}")
    await staff_page.get_by_role("button", name="Verleihen").click()
    await expect(staff_page.locator(".flash")).to_contain_text(f"Verliehen mit der Kartennummer NRW-{run}.")
    await staff_page.get_by_role("link", name="Verliehen").click()
    granted = staff_page.get_by_role("table", name="Verliehen").get_by_role("row", name=re.compile(name))
    valid_until = (date.today().replace(year=date.today().year + 3) - timedelta(days=1)).strftime("%d.%m.%Y")
    await expect(granted).to_contain_text(f"NRW-{run}")
    await expect(granted).to_contain_text(valid_until)


async def test_reject_a_proposal_with_a_reason(
    platform: RoutedPlatform, staff_page: Page, volunteers: dict[str, Any]
) -> None:
    """A rejected proposal leaves the inbox and shows its reason under "Abgelehnt"."""
    name = f"{volunteers['family']}, Ilse"
    await staff_page.goto(platform.url + f"{BASE}/honours/{volunteers['ids']['Ilse']}:ehrenamtskarte")
    await staff_page.get_by_label("Grund der Ablehnung").fill("Karte liegt schon vor (Kreis)")
    await staff_page.get_by_role("button", name="Ablehnen").click()
    await expect(staff_page.locator(".flash")).to_have_text("Der Vorschlag ist abgelehnt.")
    inbox = staff_page.get_by_role("table", name="Neue Vorschläge")
    await expect(inbox.locator("tbody tr").filter(has_text=name).filter(has_text="Ehrenamtskarte NRW")).to_have_count(0)
    await staff_page.get_by_role("link", name="Abgelehnt").click()
    await expect(staff_page.get_by_role("row", name=re.compile(name))).to_contain_text("Karte liegt schon vor (Kreis)")


async def test_honour_rules_show_the_state_defaults_and_their_dates(platform: RoutedPlatform, staff_page: Page) -> None:
    """The rules page puts the municipality's rules beside the state's, and the dated state thresholds."""
    await staff_page.goto(platform.url + f"{BASE}/honours/rules")
    rules = staff_page.get_by_role("table", name="Regeln der Kommune neben den Vorgaben des Landes")
    await expect(rules.get_by_role("row", name=re.compile("Mindestalter"))).to_contain_text("16")
    thresholds = staff_page.get_by_role("table", name=re.compile("Landesregel"))
    await expect(thresholds.get_by_role("row", name=re.compile("01.01.2026"))).to_contain_text("200 h")
    await expect(thresholds.get_by_role("row", name=re.compile("31.12.2025"))).to_contain_text("250 h")


async def test_branding_is_checked_saved_and_shown_in_the_template_preview(
    platform: RoutedPlatform, staff_page: Page
) -> None:
    """A bad logo address is named at its field; the saved sender signs the previewed invitation."""
    sender = f"Stadt Paderborn {platform.run}"
    await staff_page.goto(platform.url + f"{BASE}/letters/branding")
    await staff_page.get_by_label("Absender").fill(sender)
    await staff_page.get_by_label("Signatur").fill("Anlaufstelle für ehrenamtliches Engagement\nAm Abdinghof 11")
    await staff_page.get_by_label("Adresse des Logos (https://…)").fill("kein link")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.locator("#f-logo_url-error")).to_contain_text("https://")
    await staff_page.get_by_label("Adresse des Logos (https://…)").fill("")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.locator(".flash")).to_have_text("Absender und Logo sind gespeichert.")
    await staff_page.get_by_role("link", name="Zur Vorschau").click()
    await staff_page.get_by_label("Vorlage").select_option("invitation")
    await staff_page.get_by_label("Sprache").select_option("en")
    await staff_page.get_by_role("button", name="Zeigen").click()
    await expect(staff_page.get_by_role("heading", level=2)).to_contain_text("Invitation: Reception on Volunteer Day")
    frame = staff_page.frame_locator("iframe.mail-frame")
    await expect(frame.locator("body")).to_contain_text(sender)
    await expect(frame.locator("body")).to_contain_text("Am Abdinghof 11")


async def test_a_failed_or_sent_letter_can_be_sent_again(
    platform: RoutedPlatform, staff_page: Page, invited: dict[str, Any], volunteers: dict[str, Any]
) -> None:
    """Resend from the log queues a new delivery marked as a resend."""
    subject = f"Einladung: {invited['title']}"
    await eventually(lambda: _mails_if(platform, subject, 2), timeout=900, what="the invitations")
    await staff_page.goto(platform.url + f"{BASE}/letters?status=sent")
    resend = staff_page.get_by_role("button", name=re.compile("^Erneut senden"))
    row = staff_page.locator("tbody tr").filter(has_text=volunteers["family"]).filter(has=resend).first
    await row.get_by_role("button", name=re.compile("^Erneut senden")).click()
    await expect(staff_page.locator(".flash")).to_contain_text("Der Brief wird erneut gesendet")
    await staff_page.goto(platform.url + f"{BASE}/letters")
    await expect(staff_page.get_by_text("erneut gesendet").first).to_be_visible()


async def test_a_network_admin_creates_and_renames_a_municipality(
    platform: RoutedPlatform, signed_in: SignedIn
) -> None:
    """A wrong key is named at its field; the new municipality is listed, then renamed."""
    ags = f"0599{random.randint(0, 9999):04d}"
    page = await (await signed_in("network-admin")).new_page()
    await page.goto(platform.url + "/")
    await page.get_by_role("link", name="Kommunen verwalten").click()
    await page.get_by_role("link", name="Neue Kommune").click()
    await page.get_by_label("Gemeindeschlüssel (AGS)").fill("123")
    await page.locator("#f-name").fill(f"Teststadt {platform.run}")
    await page.get_by_role("button", name="Speichern").click()
    await expect(page.locator("#f-ags-error")).to_contain_text("Das Format stimmt nicht")
    await page.get_by_label("Gemeindeschlüssel (AGS)").fill(ags)
    await page.get_by_label("E-Mail der Anlaufstelle").fill("ehrenamt@example.org")
    await page.get_by_role("button", name="Speichern").click()
    await expect(page.locator(".flash")).to_have_text("Die Kommune ist angelegt.")
    await page.get_by_role("link", name=f"Bearbeiten Teststadt {platform.run}").click()
    await page.locator("#f-name").fill(f"Testdorf {platform.run}")
    await page.get_by_label("Art", exact=True).select_option("Gemeinde")
    await page.get_by_role("button", name="Speichern").click()
    await expect(page.get_by_role("row", name=re.compile(f"Testdorf {platform.run}"))).to_contain_text("Gemeinde")
    staff = await (await signed_in("paderborn-staff")).new_page()
    response = await staff.goto(platform.url + "/network/municipalities")
    assert response is not None
    assert response.status == 403
    await staff.close()
    await page.close()


async def test_a_reader_sees_the_pages_without_write_controls(
    platform: RoutedPlatform, signed_in: SignedIn, invited: dict[str, Any]
) -> None:
    """As paderborn-reader the event, honours and letters pages show data but no form that changes it."""
    page = await (await signed_in("paderborn-reader")).new_page()
    for path in (
        f"{BASE}/events",
        invited["path"],
        f"{BASE}/honours",
        f"{BASE}/honours?status=granted",
        f"{BASE}/letters",
        f"{BASE}/letters/branding",
        f"{BASE}/letters/templates",
    ):
        await page.goto(platform.url + path)
        forms = await page.locator("form[method=post]").evaluate_all("fs => fs.map(f => f.getAttribute('action'))")
        assert forms == ["/auth/logout"], (path, forms)
        for link in ("Neue Veranstaltung", "Einladen …", "Einlass", "Absagen …", "Entscheiden"):
            await expect(page.get_by_role("link", name=link)).to_have_count(0)
    await page.goto(platform.url + invited["path"])
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = await page.request.post(
        platform.url + invited["path"] + "/cancel", form={"csrf_token": token or "", "reason": "x"}
    )
    assert forged.status == 403
    await page.goto(platform.url + invited["path"])
    await expect(page.locator(".event-status")).to_contain_text("veröffentlicht")
    await page.close()


# -- every page of areas 5-8: axe-core and 375 px -------------------------------------------------------


async def test_every_page_passes_axe_and_fits_375_px(
    platform: RoutedPlatform, signed_in: SignedIn, axe_source: str, invited: dict[str, Any], volunteers: dict[str, Any]
) -> None:
    """axe-core finds no serious or critical violation on pages 5-8; at 375 px nothing scrolls sideways."""
    event = invited["path"]
    proposal = f"{BASE}/honours/{volunteers['ids']['Greta']}:ehrenamtskarte"
    pages = {
        "events": f"{BASE}/events",
        "event-new": f"{BASE}/events/new",
        "event": event,
        "event-edit": event + "/edit",
        "event-invite": event + "/invite?min_hours_last_12_months=200&fields=Kultur&fields=Sport",
        "event-confirm": event + "/invite/confirm?min_hours_last_12_months=100",
        "event-checkin": event + "/checkin",
        "event-cancel": event + "/cancel",
        "honours": f"{BASE}/honours",
        "honours-granted": f"{BASE}/honours?status=granted",
        "honours-rejected": f"{BASE}/honours?status=rejected",
        "honour-decide": proposal,
        "honour-rules": f"{BASE}/honours/rules",
        "letters": f"{BASE}/letters",
        "letters-templates": f"{BASE}/letters/templates?kind=honour-granted&language=de",
        "letters-branding": f"{BASE}/letters/branding",
    }
    admin_pages = {
        "network": "/network/municipalities",
        "network-new": "/network/municipalities/new",
        "network-edit": f"/network/municipalities/{PADERBORN}/edit",
    }
    found: dict[str, list[Any]] = {}
    wide: dict[str, int] = {}
    for user, paths in (("paderborn-staff", pages), ("network-admin", admin_pages)):
        context = await signed_in(user)
        desktop = await context.new_page()
        phone = await context.new_page()
        await phone.set_viewport_size({"width": 375, "height": 740})
        for name, path in paths.items():
            response = await desktop.goto(platform.url + path)
            assert response is not None
            assert response.status == 200, (name, response.status)
            await desktop.add_script_tag(content=axe_source)
            violations = await desktop.evaluate(AXE_RUN)
            serious = [v for v in violations if v["impact"] in ("serious", "critical")]
            if serious:
                found[name] = serious
            await phone.goto(platform.url + path)
            if SHOTS:
                await desktop.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)
                await phone.screenshot(path=f"{SHOTS}/{name}-375.png", full_page=True)
            width = await phone.evaluate("() => document.documentElement.scrollWidth")
            if width > 375:
                wide[name] = width
        await desktop.close()
        await phone.close()
    assert not found, found
    assert not wide, wide


async def test_english_pages_of_areas_5_to_8(
    platform: RoutedPlatform, staff_page: Page, invited: dict[str, Any]
) -> None:
    """The language link turns the event, honours and letters pages English."""
    await staff_page.goto(platform.url + f"{BASE}/events")
    await staff_page.get_by_role("link", name="English").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Events")
    await staff_page.goto(platform.url + f"{BASE}/honours")
    await expect(staff_page.get_by_role("heading", level=2).first).to_have_text("New proposals")
    await staff_page.goto(platform.url + f"{BASE}/letters")
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Delivery log")
    await staff_page.get_by_role("link", name="Deutsch").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Versandprotokoll")

"""Makes the README's screenshots of the console into docs/console/: real sign-in, real services, demo data.

Run from the repository root with the local stack up (Kafka, the store, Keycloak):

    eval "$(bash deploy/local/stack.sh env)"
    .venv/bin/python services/console/screenshots.py

It starts the three services and the console with databases of their own, signs in as
paderborn-staff on Keycloak's page, enters a few members through the console and photographs
the main pages with Debian's Chromium.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from playwright.async_api import Page, async_playwright

from engagiert.console.testing import PADERBORN, Platform, sign_in, start_platform
from engagiert.shared.testing import resolve_stack

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "console"
CHROMIUM = "/usr/bin/chromium"
BASE = f"/m/{PADERBORN}"
HEADER = "given_name;family_name;email;phone;date_of_birth;street;postal_code;city;language;consent_channels;organisation_id;field;role;since"
PEOPLE = [
    "Anna;Schmidt;anna.schmidt@example.org;05251 100200;1980-05-01;Am Abdinghof 11;33098;Paderborn;de;email;;Sport;Übungsleiterin;2001-03-01",
    "Bernd;Meier;bernd.meier@example.org;;1975-02-03;Kamp 4;33098;Paderborn;de;email;;Kultur;Chorleiter;1999-01-01",
    "Clara;Wolf;clara.wolf@example.org;;1990-11-20;;;;en;email;;Soziales;Lesepatin;2020-06-01",
    "Deniz;Yilmaz;deniz.yilmaz@example.org;;1988-04-12;;;;de;email;;Feuerwehr/Katastrophenschutz;Gruppenführer;2008-09-01",
    "Elena;Novak;elena.novak@example.org;;1969-07-30;Westernstraße 2;33098;Paderborn;de;post;;Kirche;Besuchsdienst;1995-05-01",
    "Frank;Becker;frank.becker@example.org;;1958-12-24;;;;de;email;;Umwelt;Bachpate;2012-04-15",
    "Greta;Hoffmann;greta.hoffmann@example.org;;2001-01-09;;;;de;email;;Jugendarbeit;Jugendleiterin;2018-10-01",
]
BAD = [
    "Hanna;;hanna@example;;1990-13-01;;;;de;email;;Sport;;2019-01-01",
    "Ilse;Krämer;ilse.kraemer@example.org;;;Markt 1;3309;Paderborn;de;;;Musik;;2019-01-01",
]


def _csv(rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


async def _upload(page: Page, url: str, content: bytes, button: str) -> None:
    await page.goto(url + f"{BASE}/import")
    await page.get_by_label("CSV-Datei").set_input_files(
        {"name": "mitglieder.csv", "mimeType": "text/csv", "buffer": content}
    )
    await page.get_by_role("button", name=button).click()
    await page.get_by_role("status").wait_for()


async def _shot(page: Page, name: str, *, max_height: int = 1500) -> None:
    height = min(await page.evaluate("() => document.documentElement.scrollHeight"), max_height)
    width = page.viewport_size["width"] if page.viewport_size else 1200
    await page.screenshot(
        path=OUT / f"{name}.png", full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height}
    )
    print(f"docs/console/{name}.png")


EXAMPLES = [
    (
        "Ehrenamtsbörse im Rathausfoyer",
        "Soziales",
        "Zweimal im Jahr stellen sich 30 Vereine samstags im Rathausfoyer vor; Interessierte kommen ohne Anmeldung.",
        "Zwei Kolleginnen je drei Tage Vorbereitung, 400 Euro für Stellwände und Kaffee, der Hausmeisterdienst.",
        "Gespräche statt Flyer; der Samstagvormittag; Vereine, die eine konkrete Aufgabe mitbringen.",
    ),
    (
        "Schnuppertage bei der Jugendfeuerwehr",
        "Feuerwehr/Katastrophenschutz",
        "Die Jugendfeuerwehr lädt dritte und vierte Klassen zu einem Nachmittag an der Wache ein.",
        "Vier Ehrenamtliche je Termin, Absprache mit den Grundschulen, Versicherung über die Stadt.",
        "Selbst einen Schlauch halten dürfen; ein Brief an die Eltern am selben Tag.",
    ),
]


async def _photograph_exchange(page: Page, url: str) -> None:
    """Publish practice examples through the console; photograph the board, an example, the form and the network page."""
    for title, field, done, took, worked in EXAMPLES:
        await page.goto(url + f"{BASE}/practice/new")
        await page.get_by_label("Titel").fill(title)
        await page.get_by_label("Engagementfeld").select_option(field)
        await page.get_by_label("Was wurde gemacht?").fill(done)
        await page.get_by_label("Was hat es gebraucht?").fill(took)
        await page.get_by_label("Was hat funktioniert?").fill(worked)
        await page.locator("#f-contact-email").fill("ehrenamt@paderborn.example")
        await page.get_by_label("Telefon").fill("05251 88-0")
        await page.get_by_role("button", name="Veröffentlichen").click()
    example = page.url
    for width, suffix in ((1280, ""), (375, "-phone")):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.goto(url + f"{BASE}/")
        await _shot(page, f"start-network{suffix}", max_height=2400)
        await page.goto(url + f"{BASE}/network")
        await _shot(page, f"network-figures{suffix}", max_height=4000)
        await page.goto(url + f"{BASE}/practice")
        await _shot(page, f"practice{suffix}")
        await page.goto(example)
        await _shot(page, f"practice-example{suffix}")
        await page.goto(url + f"{BASE}/practice/new")
        await _shot(page, f"practice-new{suffix}", max_height=2400)


async def photograph(platform: Platform) -> None:
    """Sign in, enter demo data through the console, photograph the main pages."""
    url = platform.url
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--lang=de-DE"],
            env={**os.environ, "LANGUAGE": "de"},
        )
        context = await sign_in(platform, browser, "paderborn-staff", viewport={"width": 1200, "height": 900})
        page = await context.new_page()
        for name, fields in (
            ("TuS Paderborn-Neuhaus 1910 e. V.", ["Sport"]),
            ("Domchor Paderborn", ["Kultur", "Kirche"]),
        ):
            await page.goto(url + f"{BASE}/organisations/new")
            await page.get_by_label("Name").fill(name)
            for f in fields:
                await page.get_by_label(f, exact=True).check()
            await page.get_by_role("button", name="Speichern").click()
        await _upload(page, url, _csv(PEOPLE), "Importieren")
        await page.goto(url + f"{BASE}/members?q=Schmidt")
        await page.get_by_role("link", name="Schmidt, Anna").click()
        for hours, day in (("4", date.today().replace(day=1)), ("2,5", date.today())):
            await page.get_by_label("Anzahl Stunden").fill(hours)
            await page.get_by_label("Datum (oder Beginn)").fill(day.isoformat())
            await page.get_by_role("button", name="Stunden speichern").click()
        member = page.url.split("#", 1)[0]

        await page.goto(url + f"{BASE}/")
        await _shot(page, "start")
        await page.goto(url + f"{BASE}/members?sort=name")
        await _shot(page, "members")
        await page.goto(member)
        await _shot(page, "member", max_height=1700)
        await page.goto(url + f"{BASE}/members/new")
        await page.get_by_label("Vorname").fill("Anna")
        await page.get_by_label("Nachname").fill("Schmidt")
        await page.get_by_role("textbox", name="E-Mail").fill("anna.schmidt@example.org")
        await page.get_by_role("button", name="Speichern").click()
        await _shot(page, "member-duplicate", max_height=900)
        await _upload(page, url, _csv(BAD), "Datei prüfen")
        await _shot(page, "import-dry-run")
        await page.goto(url + f"{BASE}/organisations")
        await _shot(page, "organisations", max_height=700)
        await page.set_viewport_size({"width": 375, "height": 740})
        await page.goto(url + f"{BASE}/")
        await _shot(page, "start-phone", max_height=1300)
        await page.set_viewport_size({"width": 1280, "height": 900})
        await _photograph_exchange(page, url)
        await context.close()
        await browser.close()


def main() -> None:
    """Start the platform, photograph, stop."""
    with ExitStack() as exits, tempfile.TemporaryDirectory() as logs:
        # A free port: the console of `make up` may hold 8000 (sign_in points the realm's redirect here).
        platform = start_platform(resolve_stack(exits), log_dir=Path(logs), console_port=None)
        try:
            asyncio.run(photograph(platform))
        finally:
            platform.stop()


if __name__ == "__main__":
    main()

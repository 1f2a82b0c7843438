"""The console in a real Chromium, signed in through Keycloak's own page, over the real services and stack."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import anyio
import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from engagiert.console.testing import BIELEFELD, PADERBORN, Platform, sign_in

pytestmark = pytest.mark.integration

SignedIn = Callable[[str], Awaitable[BrowserContext]]
BASE = f"/m/{PADERBORN}"
HEADER = "given_name;family_name;email;phone;date_of_birth;street;postal_code;city;language;consent_channels;organisation_id;field;role;since"


def _csv(run: str, rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def good_rows(run: str) -> list[str]:
    """Return rows of a valid file; names carry the run so that searches find only this session's members."""
    return [
        f"Anna;Schmidt{run};anna.{run}@example.org;;1980-05-01;Am Abdinghof 11;33098;Paderborn;de;email;;Sport;Übungsleiterin;2015-03-01",
        f"Bernd;Meier{run};bernd.{run}@example.org;;1975-02-03;;;;de;email;;Kultur;Chor;2001-01-01",
        f"Clara;Wolf{run};clara.{run}@example.org;;;;;;en;;;Soziales;;2020-06-01",
        f"Dieter;Erase{run};dieter.{run}@example.org;;1960-07-07;;;;de;email;;Umwelt;;2010-01-01",
    ]


async def _upload(page: Page, platform: Platform, content: bytes, button: str) -> None:
    """Upload ``content`` on the import page and press ``button``."""
    await page.goto(platform.url + f"{BASE}/import")
    await page.get_by_label("CSV-Datei").set_input_files(
        {"name": "mitglieder.csv", "mimeType": "text/csv", "buffer": content}
    )
    await page.get_by_role("button", name=button).click()


async def _find_member(page: Page, platform: Platform, name: str) -> str:
    """Search by name on the list and open the member; return the member page's path."""
    await page.goto(platform.url + f"{BASE}/members")
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_role("button", name="Suchen").click()
    await page.get_by_role("link", name=re.compile(name)).first.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    return page.url.removeprefix(platform.url)


@pytest.fixture(scope="module")
async def imported(platform: Platform, signed_in: SignedIn) -> dict[str, Any]:
    """Import the valid file once for the module (through the console, as staff)."""
    page = await (await signed_in("paderborn-staff")).new_page()
    await _upload(page, platform, _csv(platform.run, good_rows(platform.run)), "Importieren")
    await expect(page.get_by_role("status")).to_contain_text("4 Mitglieder importiert")
    await page.close()
    return {"run": platform.run}


async def test_sign_in_on_keycloaks_page_opens_the_start_page(platform: Platform, staff_page: Page) -> None:
    """After Keycloak's login page the console greets the user by name, in German, with the figures."""
    await staff_page.goto(platform.url + "/")
    await expect(staff_page).to_have_url(re.compile(rf"/m/{PADERBORN}/$"))
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Anlaufstelle Paderborn")
    assert await staff_page.get_attribute("html", "lang") == "de"
    await expect(staff_page.get_by_role("link", name=re.compile("aktive Mitglieder"))).to_be_visible()
    await expect(staff_page.get_by_role("navigation", name="Hauptnavigation")).to_be_visible()


async def test_import_shows_the_dry_runs_row_errors_then_imports_a_valid_file(
    platform: Platform, staff_page: Page
) -> None:
    """A file with errors shows them per row in German and imports nothing; a valid file's check passes, then it imports."""
    run = platform.run + "x"
    bad = _csv(
        run,
        [f"Eva;;eva.{run}@example;;1990-13-01;;;;de;email;;Sport;;2019-01-01", good_rows(run)[0], good_rows(run)[0]],
    )
    await _upload(staff_page, platform, bad, "Datei prüfen")
    await expect(staff_page.get_by_role("status")).to_have_text(re.compile("3 Zeilen gelesen, 2 mit Fehlern"))
    table = staff_page.get_by_role("table", name="Fehler je Zeile")
    await expect(table.get_by_role("row")).to_have_count(3)  # header + 2
    await expect(table).to_contain_text("Nachname: fehlt")
    await expect(table).to_contain_text("Geburtsdatum: kein gültiges Datum")
    await expect(table).to_contain_text("dieselbe Person wie in Zeile 3")
    # Importing the same file is refused whole, with the same table.
    await _upload(staff_page, platform, bad, "Importieren")
    await expect(staff_page.get_by_role("status")).to_contain_text("Es wurde nichts importiert")
    good = _csv(run, good_rows(run)[:2])
    await _upload(staff_page, platform, good, "Datei prüfen")
    await expect(staff_page.get_by_role("status")).to_contain_text("2 Zeilen gelesen, keine Fehler")
    await _upload(staff_page, platform, good, "Importieren")
    await expect(staff_page.get_by_role("status")).to_contain_text("2 Mitglieder importiert, 0 schon erfasste")


async def test_find_a_member_and_record_hours(platform: Platform, staff_page: Page, imported: dict[str, Any]) -> None:
    """Search by name, open the member, record hours: the figure updates; a wrong number is named at its field."""
    await _find_member(staff_page, platform, f"Schmidt{platform.run}")
    await expect(staff_page.get_by_role("heading", name="Kontakt")).to_be_visible()
    await staff_page.get_by_label("Anzahl Stunden").fill("abc")
    await staff_page.get_by_role("button", name="Stunden speichern").click()
    field = staff_page.get_by_label("Anzahl Stunden")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(staff_page.locator("#f-hours-error")).to_have_text("Bitte eine Zahl angeben.")
    await field.fill("3,5")
    await staff_page.get_by_label("Datum (oder Beginn)").fill(date.today().isoformat())
    await staff_page.get_by_role("button", name="Stunden speichern").click()
    await expect(staff_page.get_by_role("status")).to_have_text("3.5 Stunden sind erfasst.")
    hours = staff_page.get_by_role("table", name="Stunden je Jahr")
    await expect(hours.get_by_role("row", name=str(date.today().year))).to_contain_text("3,5")


async def test_a_duplicate_is_offered_as_a_choice_and_refusals_sit_at_their_fields(
    platform: Platform, staff_page: Page, imported: dict[str, Any]
) -> None:
    """Registering a known e-mail offers to open the existing member; bad fields are named in German."""
    run = platform.run
    await staff_page.goto(platform.url + f"{BASE}/members/new")
    await staff_page.get_by_label("Vorname").fill("Anna")
    await staff_page.get_by_label("Nachname").fill(f"Schmidt{run}")
    await staff_page.get_by_role("textbox", name="E-Mail").fill(f"anna.{run}@example.org")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.get_by_role("alert")).to_contain_text("Diese Person ist vielleicht schon erfasst")
    await staff_page.get_by_role("link", name="Vorhandenes Mitglied öffnen").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Anna Schmidt{run}")

    await staff_page.goto(platform.url + f"{BASE}/members/new")
    await staff_page.get_by_label("Vorname").fill("Fritz")
    await staff_page.get_by_role("textbox", name="E-Mail").fill("fritz-at-example")
    await staff_page.get_by_label("Postleitzahl").fill("330")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.locator("#f-family_name-error")).to_have_text("Bitte ausfüllen.")
    await expect(staff_page.locator("#f-contact-email-error")).to_have_text(
        "Bitte eine gültige E-Mail-Adresse angeben."
    )
    await expect(staff_page.get_by_label("Vorname")).to_have_value("Fritz")
    await staff_page.get_by_label("Nachname").fill(f"Neu{run}")
    await staff_page.get_by_role("textbox", name="E-Mail").fill(f"fritz.{run}@example.org")
    await staff_page.get_by_label("Postleitzahl").fill("")
    await staff_page.get_by_label("Engagementfeld").select_option("Feuerwehr/Katastrophenschutz")
    await staff_page.get_by_label("Seit").fill("2020-01-01")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.get_by_role("status")).to_have_text("Das Mitglied ist angelegt.")
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Fritz Neu{run}")
    await expect(staff_page.get_by_role("table", name="Engagements")).to_contain_text("Feuerwehr/Katastrophenschutz")


async def test_status_change_consent_withdrawal_and_edit(
    platform: Platform, staff_page: Page, imported: dict[str, Any]
) -> None:
    """Pause a member, withdraw their consent, change the phone number: each shows on the member page."""
    await _find_member(staff_page, platform, f"Meier{platform.run}")
    await staff_page.get_by_label("Neuer Status").select_option("paused")
    await staff_page.get_by_role("button", name="Status ändern").click()
    await expect(staff_page.get_by_role("status")).to_have_text("Der Status ist geändert.")
    await expect(staff_page.locator(".member-status")).to_contain_text("pausiert")
    await staff_page.get_by_role("button", name="Einwilligung widerrufen").click()
    await expect(staff_page.locator("#consent")).to_contain_text("Widerrufen am")
    await staff_page.get_by_role("link", name="Bearbeiten").click()
    await staff_page.get_by_label("Telefon").fill("05251 123456")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.get_by_role("status")).to_have_text("Die Änderungen sind gespeichert.")
    await expect(staff_page.get_by_role("region", name="Kontakt")).to_contain_text("05251 123456")


async def test_organisations_are_created_and_edited(platform: Platform, staff_page: Page) -> None:
    """Create an organisation (a missing name is named at its field), then rename it."""
    name = f"Sportverein {platform.run}"
    await staff_page.goto(platform.url + f"{BASE}/organisations")
    await staff_page.get_by_role("link", name="Neue Organisation").click()
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.locator("#f-name-error")).to_have_text("Bitte ausfüllen.")
    await staff_page.get_by_label("Name").fill(name)
    await staff_page.get_by_label("Sport", exact=True).check()
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.get_by_role("status")).to_have_text("Die Organisation ist angelegt.")
    await staff_page.get_by_role("link", name=f"Bearbeiten {name}", exact=True).click()
    await staff_page.get_by_label("Name").fill(name + " e. V.")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.get_by_role("row", name=re.compile(name + " e. V."))).to_contain_text("Sport")


async def test_erasure_asks_first_then_shows_each_services_confirmation(
    platform: Platform, staff_page: Page, imported: dict[str, Any], axe_source: str
) -> None:
    """Erase behind a confirm step; the page fills in the events' and notifications' confirmations as they arrive."""
    path = await _find_member(staff_page, platform, f"Erase{platform.run}")
    await staff_page.get_by_role("link", name="Löschen …").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Dieter Erase{platform.run} löschen?")
    await expect(staff_page.get_by_text("Das kann nicht rückgängig gemacht werden.")).to_be_visible()
    await staff_page.get_by_role("button", name="Endgültig löschen").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Löschung")
    status = staff_page.locator("#erasure-status")
    await expect(status).to_contain_text("Register: gelöscht")
    # htmx reloads the list every two seconds until both services confirmed (Kafka, real consumers;
    # on the shared topics they may first read other sessions' floods: up to 4 minutes on a busy machine).
    await expect(status).to_contain_text("Alle Dienste haben die Löschung bestätigt.", timeout=240_000)
    await expect(status).to_contain_text("Veranstaltungen und Ehrungen: gelöscht")
    await expect(status).to_contain_text("Benachrichtigungen: gelöscht")
    assert await _serious_violations(staff_page, axe_source) == []
    response = await staff_page.goto(platform.url + path)
    assert response is not None
    assert response.status == 404


async def test_a_reader_sees_no_write_controls_and_a_forged_post_is_refused(
    platform: Platform, signed_in: SignedIn, imported: dict[str, Any]
) -> None:
    """As paderborn-reader the pages show data but no form that changes it; a forged POST with a valid CSRF token gets 403."""
    page = await (await signed_in("paderborn-reader")).new_page()
    path = await _find_member(page, platform, f"Wolf{platform.run}")
    await expect(page.get_by_text("nur lesen")).to_be_visible()
    for name in ("Bearbeiten", "Löschen …", "Neues Mitglied"):
        await expect(page.get_by_role("link", name=name)).to_have_count(0)
    for name in ("Status ändern", "Einwilligung widerrufen", "Stunden speichern"):
        await expect(page.get_by_role("button", name=name)).to_have_count(0)
    forms = await page.locator("form[method=post]").evaluate_all("fs => fs.map(f => f.getAttribute('action'))")
    assert forms == ["/auth/logout"]
    for list_path in ("/members", "/organisations", "/import"):
        await page.goto(platform.url + BASE + list_path)
        assert await page.locator("form[method=post]").evaluate_all("fs => fs.map(f => f.getAttribute('action'))") == [
            "/auth/logout"
        ]
    await page.goto(platform.url + path)
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = await page.request.post(
        platform.url + path + "/hours",
        form={"csrf_token": token or "", "hours": "5", "date_from": date.today().isoformat()},
    )
    assert forged.status == 403
    assert "Keine Berechtigung" in await forged.text()
    member_id = path.rsplit("/", 1)[-1]
    staff = {"Authorization": f"Bearer {platform.token('paderborn-staff')}"}
    async with httpx.AsyncClient(base_url=platform.service("registry")) as client:
        member = await client.get(f"/v1/municipalities/{PADERBORN}/members/{member_id}", headers=staff)
    assert member.json()["totals"]["hours_by_year"] == {}
    await page.close()


async def test_bielefeld_staff_opening_a_paderborn_member_sees_not_found(
    platform: Platform, signed_in: SignedIn, staff_page: Page, imported: dict[str, Any]
) -> None:
    """A Bielefeld user gets "Nicht gefunden" for Paderborn's member URL and start page, as the services answer 404."""
    path = await _find_member(staff_page, platform, f"Schmidt{platform.run}")
    page = await (await signed_in("bielefeld-staff")).new_page()
    await page.goto(platform.url + "/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Anlaufstelle Bielefeld")
    for target in (path, f"{BASE}/", f"/m/{BIELEFELD}/members/{path.rsplit('/', 1)[-1]}"):
        response = await page.goto(platform.url + target)
        assert response is not None
        assert response.status == 404, target
        await expect(page.get_by_role("heading", level=1)).to_have_text("Nicht gefunden")
        assert f"Schmidt{platform.run}" not in await page.content()
    await page.close()


async def test_a_post_without_the_csrf_token_is_refused(
    platform: Platform, staff_page: Page, imported: dict[str, Any]
) -> None:
    """A signed-in staff member's browser posting without the token (a forged cross-site form) gets the 403 page."""
    path = await _find_member(staff_page, platform, f"Wolf{platform.run}")
    response = await staff_page.request.post(
        platform.url + path + "/hours", form={"hours": "7", "date_from": date.today().isoformat()}
    )
    assert response.status == 403
    assert "Das Formular war abgelaufen" in await response.text()
    wrong = await staff_page.request.post(
        platform.url + path + "/hours", form={"csrf_token": "forged", "hours": "7", "date_from": "2026-01-01"}
    )
    assert wrong.status == 403
    await staff_page.reload()
    await expect(staff_page.get_by_text("Noch keine Stunden erfasst.")).to_be_visible()


async def test_english_is_one_click_away(platform: Platform, staff_page: Page) -> None:
    """The language link switches the whole page to English and back, keeping the page."""
    await staff_page.goto(platform.url + f"{BASE}/members")
    await staff_page.get_by_role("link", name="English").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Members")
    assert await staff_page.get_attribute("html", "lang") == "en"
    await expect(staff_page.get_by_role("navigation", name="Main navigation")).to_be_visible()
    await staff_page.get_by_role("link", name="Deutsch").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Mitglieder")


# -- every page: axe-core audit and 375 px ----------------------------------------------------------

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


async def _serious_violations(page: Page, axe_source: str) -> list[Any]:
    """Return axe-core's serious and critical violations on the page as it is now."""
    await page.add_script_tag(content=axe_source)
    return [v for v in await page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]


async def _pages(platform: Platform, page: Page) -> dict[str, str]:
    """Return each page of the console's areas 1-4 by name (paths for this session's data)."""
    member = await _find_member(page, platform, f"Schmidt{platform.run}")
    await page.goto(platform.url + f"{BASE}/organisations")
    edit_org = await page.get_by_role("link", name=re.compile("^Bearbeiten")).first.get_attribute("href")
    return {
        "start": f"{BASE}/",
        "members": f"{BASE}/members?status=active&sort=name",
        "member": member,
        "member-new": f"{BASE}/members/new",
        "member-edit": member + "/edit",
        "member-erase": member + "/erase",
        "import": f"{BASE}/import",
        "organisations": f"{BASE}/organisations",
        "organisation-new": f"{BASE}/organisations/new",
        "organisation-edit": str(edit_org),
        "not-found": f"{BASE}/members/no-such-member",
    }


async def test_every_page_passes_axe_and_fits_375_px(
    platform: Platform, signed_in: SignedIn, axe_source: str, imported: dict[str, Any], browser: Any
) -> None:
    """axe-core finds no serious or critical violation on any page; at 375 px nothing scrolls sideways."""
    desktop = await (await signed_in("paderborn-staff")).new_page()
    await desktop.goto(platform.url + f"{BASE}/organisations/new")  # an organisation to edit
    await desktop.get_by_label("Name").fill(f"Chor {platform.run}")
    await desktop.get_by_role("button", name="Speichern").click()
    pages = await _pages(platform, desktop)
    # The import page with the dry run's table, and an erasure's status page, are pages of their own.
    bad = _csv(platform.run + "axe", [";;x@;;;;;;de;;;Sport;;2019-01-01"])
    await _upload(desktop, platform, bad, "Datei prüfen")
    found: dict[str, list[Any]] = {}
    for name, path in {**pages, "import-report": None}.items():
        if path is not None:
            await desktop.goto(platform.url + path)
        await desktop.add_script_tag(content=axe_source)
        violations = await desktop.evaluate(AXE_RUN)
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        if serious:
            found[name] = serious
    assert not found, found
    await desktop.close()

    phone = await (await signed_in("paderborn-staff")).new_page()
    await phone.set_viewport_size({"width": 375, "height": 740})
    wide: dict[str, int] = {}
    for name, path in pages.items():
        await phone.goto(platform.url + path)
        width = await phone.evaluate("() => document.documentElement.scrollWidth")
        if width > 375:
            wide[name] = width
        await phone.add_script_tag(content=axe_source)
        serious = [v for v in await phone.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]
        if serious:
            found[name + "@375"] = serious
    assert not wide, wide
    assert not found, found
    await phone.close()


async def test_a_reader_and_a_network_admin_see_pages_that_pass_axe(
    platform: Platform, signed_in: SignedIn, axe_source: str, imported: dict[str, Any]
) -> None:
    """The read-only views and the municipality choice of a user of every municipality pass the audit too."""
    for username, path in (("paderborn-reader", f"{BASE}/members"), ("network-admin", "/")):
        page = await (await signed_in(username)).new_page()
        await page.goto(platform.url + path)
        await page.add_script_tag(content=axe_source)
        violations = await page.evaluate(AXE_RUN)
        assert not [v for v in violations if v["impact"] in ("serious", "critical")], (username, violations)
        await page.close()


# -- without JavaScript, several municipalities, sign-out ---------------------------------------------


async def test_recording_hours_works_with_javascript_off(
    platform: Platform, browser: Any, imported: dict[str, Any]
) -> None:
    """With JavaScript off the forms post plainly: the hours are recorded and the page says so."""
    context = await sign_in(platform, browser, "paderborn-staff", java_script_enabled=False)
    page = await context.new_page()
    path = await _find_member(page, platform, f"Meier{platform.run}")
    await page.get_by_label("Anzahl Stunden").fill("2")
    await page.get_by_role("button", name="Stunden speichern").click()
    await expect(page.get_by_role("status")).to_have_text("2 Stunden sind erfasst.")
    assert page.url.startswith(platform.url + path)
    await context.close()


async def test_a_user_of_two_municipalities_switches_between_them(platform: Platform, signed_in: SignedIn) -> None:
    """owl-staff chooses a municipality first, then switches with the header's form."""
    page = await (await signed_in("owl-staff")).new_page()
    await page.goto(platform.url + "/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Kommune wählen")
    await page.get_by_role("link", name="Bielefeld").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Anlaufstelle Bielefeld")
    await page.get_by_label("Kommune", exact=True).select_option(PADERBORN)
    await page.get_by_role("button", name="Wechseln").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Anlaufstelle Paderborn")
    await page.close()


async def test_sign_out_ends_keycloaks_session_too(platform: Platform, browser: Any, axe_source: str) -> None:
    """After signing out, opening the console asks for the password again (Keycloak's session ended too)."""
    context = await sign_in(platform, browser, "paderborn-staff")
    page = await context.new_page()
    await page.goto(platform.url + "/")
    await page.get_by_role("button", name="Abmelden").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Abgemeldet")
    assert await _serious_violations(page, axe_source) == []
    response = await page.goto(platform.url + f"{BASE}/members")
    assert response is not None
    assert page.url.startswith(platform.keycloak.url), page.url
    await expect(page.locator("#password")).to_be_visible()
    await context.close()


async def test_the_access_token_is_refreshed_and_pages_keep_working(platform: Platform, staff_page: Page) -> None:
    """Tokens older than 30 s were refreshed at Keycloak during the session (console log), and the next page still loads."""
    await staff_page.wait_for_timeout(31_000)  # the token of the first sign-in is now older than 30 s
    await staff_page.goto(platform.url + f"{BASE}/members")
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Mitglieder")
    log = platform.console.log_path.read_text(errors="replace")
    assert "token_refreshed" in log
    assert "token_refresh_refused" not in log


async def test_the_export_is_a_csv_of_the_members(
    platform: Platform, staff_page: Page, imported: dict[str, Any]
) -> None:
    """The export link downloads the municipality's members as CSV with the import's columns."""
    await staff_page.goto(platform.url + f"{BASE}/import")
    async with staff_page.expect_download() as info:
        await staff_page.get_by_role("link", name="Alle Mitglieder als CSV herunterladen").click()
    download = await info.value
    assert download.suggested_filename == f"mitglieder-{PADERBORN}.csv"
    text = await anyio.Path(await download.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("member_id,given_name,family_name,email")
    assert f"Schmidt{platform.run}" in text


async def test_the_keyboard_reaches_the_content_first(platform: Platform, staff_page: Page) -> None:
    """The first Tab lands on the skip link, which moves the focus to the main content; focus is visible."""
    await staff_page.goto(platform.url + f"{BASE}/members")
    await staff_page.keyboard.press("Tab")
    focused = staff_page.locator(":focus")
    await expect(focused).to_have_text("Zum Inhalt springen")
    outline = await focused.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    await staff_page.keyboard.press("Enter")
    await expect(staff_page.locator(":focus")).to_have_attribute("id", "main")
    await staff_page.keyboard.press("Tab")
    await expect(staff_page.locator(":focus")).to_have_text("Neues Mitglied")

"""Issue 17 in a real Chromium: the start page's figures beside the network, the network page, the practice board.

Signed in through Keycloak's own page, over the three services as processes on the shared stack.
The figures come from registry and events (`GET .../figures`, `GET /v1/network/figures`): where a
service does not offer them yet (404), the pages say so in German, and these tests check that note
instead; once the routes exist the same tests check the tables, charts and CSV against the services.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from engagiert.console.testing import BIELEFELD, PADERBORN, NotReady, Platform, start_platform
from engagiert.shared.testing import StackEndpoints
from engagiert.shared.testing.keycloak import bearer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

SignedIn = Callable[[str], Awaitable[BrowserContext]]
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
BASE = f"/m/{PADERBORN}"
YEAR = datetime.now(UTC).year
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""
FIELDS = ("Sport", "Sport", "Sport", "Kultur", "Kultur", "Soziales", "Sport", "Kultur")


@pytest.fixture(scope="module")
def platform(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Run the services and a console on a free port (the sign-in's way back is routed to it); add members."""
    try:
        running = start_platform(stack, log_dir=tmp_path_factory.mktemp("logs"), console_port=None)
    except NotReady as exc:
        pytest.fail(str(exc))
    try:
        _register_members(running)
        yield running
    finally:
        running.stop()


def _register_members(platform: Platform) -> None:
    """Register eight Paderborn members with hours this year (enough for cells of 5 and more)."""
    headers = bearer(platform.token("paderborn-staff"))
    with httpx.Client(base_url=platform.service("registry"), headers=headers, timeout=30) as client:
        for n, field in enumerate(FIELDS):
            created = client.post(
                f"/v1/municipalities/{PADERBORN}/members",
                json={
                    "given_name": f"Ada{n}",
                    "family_name": f"Netz{platform.run}",
                    "date_of_birth": f"{1950 + 6 * n}-03-01",
                    "consent": {"channels": [], "source": "Test"},
                    "engagements": [{"field": field, "since": f"{YEAR - 3}-01-01"}],
                },
            )
            assert created.status_code == 201, created.text
            hours = client.post(
                f"/v1/municipalities/{PADERBORN}/members/{created.json()['member_id']}/hours",
                json={"hours": 2.5 + n, "date_from": date(YEAR, 1, 10).isoformat()},
            )
            assert hours.status_code == 201, hours.text


def _figures_served(platform: Platform, service: str) -> bool:
    """Return whether ``service`` offers the network's figures (the figures branch); 404 = not yet."""
    headers = bearer(platform.token("paderborn-reader"))
    answer = httpx.get(
        platform.service(service) + "/v1/network/figures", params={"period": str(YEAR)}, headers=headers, timeout=60
    )
    return answer.status_code != 404


@pytest.fixture
async def reader_page(signed_in: SignedIn) -> AsyncIterator[Page]:
    """Give a page of a context signed in as ``paderborn-reader``."""
    page = await (await signed_in("paderborn-reader")).new_page()
    yield page
    await page.close()


async def _publish(page: Page, platform: Platform, title: str, *, field: str = "Soziales") -> str:
    """Publish a practice example through the form; return its page's path."""
    await page.goto(platform.url + f"{BASE}/practice")
    await page.get_by_role("link", name="Praxisbeispiel veröffentlichen").click()
    await page.get_by_label("Titel").fill(title)
    await page.get_by_label("Engagementfeld").select_option(field)
    await page.get_by_label("Was wurde gemacht?").fill("Vereine stellen sich samstags im Rathausfoyer vor.")
    await page.get_by_label("Was hat es gebraucht?").fill("Zwei Kolleginnen, drei Tage, 400 Euro.")
    await page.get_by_label("Was hat funktioniert?").fill("Gespräche statt Flyer.")
    await page.locator("#f-contact-email").fill("anlaufstelle@paderborn.example")
    await page.get_by_role("button", name="Veröffentlichen").click()
    await expect(page.locator(".flash")).to_have_text("Das Praxisbeispiel ist veröffentlicht.")
    return page.url.removeprefix(platform.url)


# -- the practice-example board -----------------------------------------------------------------------


async def test_staff_publish_find_edit_and_withdraw_a_practice_example(platform: Platform, staff_page: Page) -> None:
    """Publish through the form; the board finds it by words, field and kind; edit the title; withdraw it."""
    title = f"Ehrenamtsbörse {platform.run}"
    path = await _publish(staff_page, platform, title)
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(title)
    await expect(staff_page.locator(".tags")).to_contain_text("Stadt")
    await expect(staff_page.get_by_role("link", name="anlaufstelle@paderborn.example")).to_be_visible()

    await staff_page.goto(platform.url + f"{BASE}/practice?q=rathausfoyer+{platform.run}")
    await expect(staff_page.get_by_role("link", name=title)).to_be_visible()
    await staff_page.goto(platform.url + f"{BASE}/practice?q={platform.run}&field=Sport")
    await expect(staff_page.get_by_role("link", name=title)).to_have_count(0)
    await staff_page.goto(platform.url + f"{BASE}/practice?q={platform.run}&field=Soziales&kind=Stadt")
    await expect(staff_page.get_by_role("link", name=title)).to_be_visible()
    await staff_page.goto(platform.url + f"{BASE}/practice?q={platform.run}&kind=Kreis")
    await expect(staff_page.get_by_text("Keine Praxisbeispiele gefunden.")).to_be_visible()

    await staff_page.goto(platform.url + path)
    await staff_page.get_by_role("link", name="Bearbeiten", exact=True).click()
    await staff_page.get_by_label("Titel").fill(title + " im Rathaus")
    await staff_page.get_by_role("button", name="Speichern").click()
    await expect(staff_page.locator(".flash")).to_have_text("Das Praxisbeispiel ist gespeichert.")
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(title + " im Rathaus")

    await staff_page.get_by_role("link", name="Zurückziehen …").click()
    await staff_page.get_by_role("button", name="Zurückziehen").click()
    await expect(staff_page.locator(".flash")).to_have_text("Das Praxisbeispiel ist zurückgezogen.")
    await staff_page.goto(platform.url + f"{BASE}/practice?q={platform.run}")
    await expect(staff_page.get_by_role("link", name=re.compile(title))).to_have_count(0)
    response = await staff_page.goto(platform.url + path)
    assert response is not None
    assert response.status == 404


async def test_the_form_shows_refusals_in_german_next_to_the_fields(platform: Platform, staff_page: Page) -> None:
    """A title of two letters, no field and a broken e-mail come back as German errors under their fields."""
    await staff_page.goto(platform.url + f"{BASE}/practice/new")
    await staff_page.get_by_label("Titel").fill("ab")
    await staff_page.get_by_label("Was wurde gemacht?").fill("Etwas.")
    await staff_page.get_by_label("Was hat es gebraucht?").fill("Wenig.")
    await staff_page.get_by_label("Was hat funktioniert?").fill("Alles.")
    await staff_page.locator("#f-contact-email").fill("keine-adresse")
    await staff_page.get_by_role("button", name="Veröffentlichen").click()
    await expect(staff_page.get_by_role("alert")).to_contain_text("Bitte prüfen Sie Ihre Angaben")
    await expect(staff_page.locator("#f-title-error")).to_be_visible()
    await expect(staff_page.locator("#f-field-error")).to_have_text("Bitte einen der angebotenen Werte wählen.")
    await expect(staff_page.locator("#f-contact-email-error")).to_have_text(
        "Bitte eine gültige E-Mail-Adresse angeben."
    )
    await expect(staff_page.get_by_label("Was hat funktioniert?")).to_have_value("Alles.")


async def test_a_stale_edit_is_refused_with_a_note(platform: Platform, signed_in: SignedIn) -> None:
    """Two forms read at the same revision: the second save says the example changed meanwhile and keeps the input."""
    context = await signed_in("paderborn-staff")
    first, second = await context.new_page(), await context.new_page()
    path = await _publish(first, platform, f"Lesepaten {platform.run}", field="Bildung")
    await first.goto(platform.url + path + "/edit")
    await second.goto(platform.url + path + "/edit")
    await first.get_by_label("Titel").fill(f"Lesepaten in Kitas {platform.run}")
    await first.get_by_role("button", name="Speichern").click()
    await expect(first.locator(".flash")).to_have_text("Das Praxisbeispiel ist gespeichert.")
    await second.get_by_label("Titel").fill(f"Lesepaten in Schulen {platform.run}")
    await second.get_by_role("button", name="Speichern").click()
    await expect(second.get_by_role("alert")).to_contain_text("Jemand hat das Beispiel inzwischen geändert")
    await expect(second.get_by_label("Titel")).to_have_value(f"Lesepaten in Schulen {platform.run}")
    await first.close()
    await second.close()


async def test_others_read_but_do_not_change_an_example(
    platform: Platform, staff_page: Page, reader_page: Page, signed_in: SignedIn
) -> None:
    """Bielefeld's staff read Paderborn's example without edit controls and get "not found" for its edit form;
    Paderborn's reader sees no write control and a forged POST is refused."""
    path = await _publish(staff_page, platform, f"Stadtteilpaten {platform.run}")
    example_id = path.rsplit("/", 1)[1]
    bielefeld = await (await signed_in("bielefeld-staff")).new_page()
    await bielefeld.goto(platform.url + f"/m/{BIELEFELD}/practice?q={platform.run}")
    await bielefeld.get_by_role("link", name=f"Stadtteilpaten {platform.run}").click()
    await expect(bielefeld.get_by_role("heading", level=1)).to_have_text(f"Stadtteilpaten {platform.run}")
    await expect(bielefeld.get_by_role("link", name="Bearbeiten", exact=True)).to_have_count(0)
    response = await bielefeld.goto(platform.url + f"/m/{BIELEFELD}/practice/{example_id}/edit")
    assert response is not None
    assert response.status == 404
    response = await bielefeld.goto(platform.url + path)  # Paderborn's pages are not Bielefeld's
    assert response is not None
    assert response.status == 404
    await bielefeld.close()

    await reader_page.goto(platform.url + path)
    await expect(reader_page.get_by_role("heading", level=1)).to_have_text(f"Stadtteilpaten {platform.run}")
    forms = await reader_page.locator("form[method=post]").evaluate_all("fs => fs.map(f => f.getAttribute('action'))")
    assert forms == ["/auth/logout"]
    await expect(reader_page.get_by_role("link", name="Bearbeiten", exact=True)).to_have_count(0)
    await reader_page.goto(platform.url + f"{BASE}/practice")
    await expect(reader_page.get_by_role("link", name="Praxisbeispiel veröffentlichen")).to_have_count(0)
    token = await reader_page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = await reader_page.request.post(
        platform.url + path + "/withdraw", form={"csrf_token": token or "", "revision": "1"}
    )
    assert forged.status == 403
    await reader_page.goto(platform.url + path)
    await expect(reader_page.get_by_role("heading", level=1)).to_have_text(f"Stadtteilpaten {platform.run}")


# -- figures (these check the real tables once registry and events serve the figures routes) ------------


async def test_the_start_page_shows_the_figures_beside_the_network_median(platform: Platform, staff_page: Page) -> None:
    """This year's figures in a table beside the network's median (German numbers), or the note that they are not there yet."""
    await staff_page.goto(platform.url + f"{BASE}/")
    await expect(staff_page.get_by_role("heading", name=f"Ihre Kommune im Netzwerk {YEAR}")).to_be_visible()
    registry = _figures_served(platform, "registry")
    events = _figures_served(platform, "events")
    if not registry:
        await expect(staff_page.get_by_text("Die Zahlen des Registers")).to_contain_text("noch nicht verfügbar")
    if not events:
        await expect(staff_page.get_by_text("Die Zahlen zu Veranstaltungen")).to_contain_text("noch nicht verfügbar")
    if registry:
        table = staff_page.get_by_role("table", name=re.compile("neben dem Median des Netzwerks"))
        await expect(table.get_by_role("columnheader", name="Netzwerk (Median)")).to_be_visible()
        row = table.locator("tr", has=staff_page.locator("th", has_text="Aktive Mitglieder"))
        await expect(row.locator("td").first).to_have_text(str(len(FIELDS)))
        hours = sum(2.5 + n for n in range(len(FIELDS)))  # 48.0
        hours_row = table.locator("tr", has=staff_page.locator("th", has_text="Geleistete Stunden"))
        await expect(hours_row.locator("td").first).to_have_text(f"{hours:.0f}")


async def test_the_network_page_has_charts_with_tables_and_a_csv(platform: Platform, staff_page: Page) -> None:
    """Charts per field and per quarter, each an SVG image with a table beside it; Paderborn's row marked;
    suppressed cells "–" with the footnote; the CSV downloads. Without the figures routes: the note."""
    response = await staff_page.goto(platform.url + f"{BASE}/network")
    assert response is not None
    assert response.status == 200
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Zahlen im Netzwerk {YEAR}")
    if not _figures_served(platform, "registry"):
        await expect(staff_page.get_by_text("Die Zahlen des Registers")).to_contain_text("noch nicht verfügbar")
        await expect(staff_page.locator("svg[role=img]")).to_have_count(0)
        return
    charts = staff_page.locator("figure.chart")
    assert await charts.count() >= 3
    for i in range(await charts.count()):
        chart = charts.nth(i)
        svg = chart.locator("svg[role=img]")
        labelled = (await svg.get_attribute("aria-labelledby") or "").split()
        assert len(labelled) == 2
        for ident in labelled:
            assert await chart.locator(f"#{ident}").count() == 1
        await expect(chart.get_by_role("table")).to_have_count(1)
    by_field = staff_page.get_by_role("table", name=re.compile("Aktive Mitglieder nach Engagementfeld"))
    sport = by_field.locator("tr", has=staff_page.locator("th", has_text="Sport"))
    await expect(sport.locator("td").first).to_have_text("4")
    own = staff_page.locator("table.network-table tr.own")
    await expect(own).to_have_count(1)
    await expect(own).to_contain_text("Paderborn")
    await expect(own).to_contain_text("Ihre Kommune")
    await expect(staff_page.locator("#suppressed-note")).to_contain_text("weniger als 5")
    bielefeld = staff_page.locator("table.network-table tbody tr", has_text="Bielefeld")
    await expect(bielefeld.locator("td", has_text="–").first).to_be_visible()
    async with staff_page.expect_download() as download:
        await staff_page.get_by_role("link", name=f"Mitglieder und Stunden {YEAR} als CSV").click()
    saved = await (await download.value).path()
    assert "Paderborn" in saved.read_text(encoding="utf-8")


# -- every new page: axe-core and 375 px ---------------------------------------------------------------


async def test_every_new_page_passes_axe_and_fits_375_px(
    platform: Platform, signed_in: SignedIn, staff_page: Page, axe_source: str
) -> None:
    """axe-core finds no serious or critical violation on the start, network and practice pages; nothing scrolls sideways at 375 px."""
    path = await _publish(staff_page, platform, f"Freiwilligentag {platform.run}", field="Umwelt")
    pages = {
        "start": f"{BASE}/",
        "network-figures": f"{BASE}/network",
        "practice": f"{BASE}/practice",
        "practice-search": f"{BASE}/practice?q=foyer&field=Umwelt&kind=Stadt",
        "practice-detail": path,
        "practice-new": f"{BASE}/practice/new",
        "practice-edit": path + "/edit",
        "practice-withdraw": path + "/withdraw",
    }
    context = await signed_in("paderborn-staff")
    desktop, phone = await context.new_page(), await context.new_page()
    await desktop.set_viewport_size({"width": 1280, "height": 900})
    await phone.set_viewport_size({"width": 375, "height": 740})
    found: dict[str, Any] = {}
    wide: dict[str, int] = {}
    for name, page_path in pages.items():
        response = await desktop.goto(platform.url + page_path)
        assert response is not None
        assert response.status == 200, (name, response.status)
        await desktop.add_script_tag(content=axe_source)
        violations = await desktop.evaluate(AXE_RUN)
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        if serious:
            found[name] = serious
        await phone.goto(platform.url + page_path)
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


async def test_the_board_and_the_network_page_in_english(platform: Platform, staff_page: Page) -> None:
    """The language link turns the board and the network page English."""
    await staff_page.goto(platform.url + f"{BASE}/practice")
    await staff_page.get_by_role("link", name="English").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text("Practice examples")
    await staff_page.goto(platform.url + f"{BASE}/network")
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Figures of the network {YEAR}")
    await staff_page.get_by_role("link", name="Deutsch").click()
    await expect(staff_page.get_by_role("heading", level=1)).to_have_text(f"Zahlen im Netzwerk {YEAR}")

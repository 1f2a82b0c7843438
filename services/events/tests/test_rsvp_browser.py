"""The RSVP page in a real headless Chromium (Debian's package): answer by clicking, on a desktop and a phone."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from engagiert.events.bench import event_body, seed_members
from engagiert.events.repository import EVENTS, INVITATIONS, SEATS_TAKEN

Running = Any  # the fixture type lives in conftest.py (not importable under importlib mode)

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `deploy/local/stack.sh up` installs it
expect.set_options(timeout=15_000)  # how long `expect` waits for the page on a busy machine (not a speed claim)

# What a screen reader and a keyboard need from the page, read from the rendered DOM.
A11Y_FACTS = """() => {
  const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')];
  return {
    lang: document.documentElement.lang,
    title: document.title,
    h1: [...document.querySelectorAll('h1')].map(h => h.textContent.trim()),
    controls: controls.length,
    unlabelled: controls.filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))
      .map(c => c.name || c.id || c.tagName),
    buttons: [...document.querySelectorAll('button')].map(b => b.textContent.trim()),
    viewport_meta: !!document.querySelector('meta[name=viewport]'),
  };
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Launch Debian's Chromium headless through Playwright (never Playwright's own browser builds)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `bash deploy/local/stack.sh up` installs Debian's chromium package")
    async with async_playwright() as pw:
        # --no-sandbox: the tests run as root on CI, where Chromium refuses its sandbox.
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _invite(r: Running, member_ids: list[str], *, guests: int) -> str:
    """Create a scheduled event and invite ``member_ids``; return the event id."""
    created = await r.client.post(r.base, json=event_body(capacity=10, guests=guests), headers=r.headers)
    assert created.status_code == 201, created.text
    event_id = str(created.json()["id"])
    issued = await r.client.post(
        f"{r.base}/{event_id}/invitations/issue", json={"member_ids": member_ids}, headers=r.headers
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["invited"] == len(member_ids)
    return event_id


async def _link(r: Running, event_id: str, member_id: str) -> str:
    """Return the signed RSVP link of a member's invitation, as the invitation mail carries it."""
    uc = r.app.state.use_cases().invitation_mails
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    url = str(uc.rsvp_url(f"{event_id}:{member_id}", event["rsvp_deadline"]))
    assert url.startswith(r.settings.public_base_url + "/rsvp/")
    return url


async def _facts(page: Page) -> dict[str, Any]:
    facts: dict[str, Any] = await page.evaluate(A11Y_FACTS)
    return facts


async def test_a_volunteer_switches_language_and_accepts_with_one_guest_by_clicking(
    served: Running, browser: Browser
) -> None:
    """Open the mail's link, switch to English and back, choose one guest, accept: the page confirms, the store agrees."""
    r = served
    await seed_members(r.db, r.ags, 1)
    event_id = await _invite(r, ["m000000"], guests=2)
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()

    response = await page.goto(await _link(r, event_id, "m000000"))
    assert response is not None
    assert response.status == 200
    facts = await _facts(page)
    assert facts["lang"] == "de"
    assert facts["title"] == "Einladung: Antwort"
    assert facts["h1"] == ["Ihre Einladung"]
    assert facts["controls"] == 1  # the guests select
    assert facts["unlabelled"] == []
    assert facts["viewport_meta"]
    assert {"Ich komme gern", "Ich kann leider nicht kommen"} <= set(facts["buttons"])
    await expect(page.get_by_role("status")).to_have_text("Bitte sagen Sie zu oder ab.")

    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your invitation")
    await expect(page.get_by_label("Number of guests")).to_be_visible()
    assert (await _facts(page))["unlabelled"] == []
    await page.get_by_role("link", name="Deutsch").click()
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Einladung")

    await page.get_by_label("Anzahl Begleitpersonen").select_option("1")
    await page.get_by_role("button", name="Ich komme gern").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Vielen Dank")
    await expect(page.get_by_role("status")).to_have_text("Sie haben zugesagt (1 Begleitperson). Vielen Dank!")
    assert await page.get_attribute("html", "lang") == "de"

    invitation = await r.db[INVITATIONS].find_one({"_id": f"{event_id}:m000000"})
    assert invitation is not None
    assert (invitation["status"], invitation["guests"]) == ("accepted", 1)
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    assert event[SEATS_TAKEN] == 2

    # Opening the link again shows the answer given, in the language asked for.
    await page.goto(await _link(r, event_id, "m000000") + "?lang=en")
    await expect(page.get_by_role("status")).to_have_text("You accepted (1 guest). Thank you!")
    await context.close()


async def test_a_volunteer_declines_on_a_phone(served: Running, browser: Browser) -> None:
    """On a 375 px phone the page fits without sideways scrolling, the buttons are thumb-sized, a tap declines."""
    r = served
    await seed_members(r.db, r.ags, 2)
    event_id = await _invite(r, ["m000000", "m000001"], guests=1)
    context = await browser.new_context(
        viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True, has_touch=True, locale="de-DE"
    )
    page = await context.new_page()
    response = await page.goto(await _link(r, event_id, "m000001"))
    assert response is not None
    assert response.status == 200

    # Without a working viewport meta a phone lays the page out 980 px wide and shrinks it.
    layout = await page.evaluate("() => ({inner: window.innerWidth, scroll: document.documentElement.scrollWidth})")
    assert layout == {"inner": 375, "scroll": 375}
    for name in ("Ich komme gern", "Ich kann leider nicht kommen"):
        box = await page.get_by_role("button", name=name).bounding_box()
        assert box is not None
        assert box["height"] >= 44, name
        assert box["x"] >= 0, name
        assert box["x"] + box["width"] <= 375, name
    facts = await _facts(page)
    assert facts["lang"] == "de"
    assert facts["unlabelled"] == []
    assert facts["h1"] == ["Ihre Einladung"]

    await page.get_by_role("button", name="Ich kann leider nicht kommen").tap()
    await expect(page.get_by_role("status")).to_have_text("Sie haben abgesagt. Schade, vielleicht beim nächsten Mal.")
    invitation = await r.db[INVITATIONS].find_one({"_id": f"{event_id}:m000001"})
    assert invitation is not None
    assert invitation["status"] == "declined"
    other = await r.db[INVITATIONS].find_one({"_id": f"{event_id}:m000000"})
    assert other is not None
    assert other["status"] == "invited"
    await context.close()


async def test_the_page_keeps_its_looks_under_its_strict_policy_and_cannot_be_framed(
    served: Running, browser: Browser, tmp_path: Path
) -> None:
    """Chromium reports no CSP violation (the inline style passes by hash, no script exists) and refuses to frame it."""
    r = served
    await seed_members(r.db, r.ags, 1)
    event_id = await _invite(r, ["m000000"], guests=1)
    link = await _link(r, event_id, "m000000")
    context = await browser.new_context(locale="de-DE", viewport={"width": 420, "height": 800})
    page = await context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    response = await page.goto(link)
    assert response is not None
    headers = await response.all_headers()
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    # The style sheet applied: the accept button has the page's blue background.
    color = await page.get_by_role("button", name="Ich komme gern").evaluate("b => getComputedStyle(b).backgroundColor")
    assert color == "rgb(11, 83, 148)"
    await page.screenshot(path=str(tmp_path / "rsvp.png"), full_page=True)
    print(f"\nscreenshot: {tmp_path / 'rsvp.png'}")
    framing = await context.new_page()
    frame_errors: list[str] = []
    framing.on("console", lambda msg: frame_errors.append(msg.text))
    await framing.set_content(f'<iframe src="{link}" width="400" height="400"></iframe>')
    await framing.wait_for_timeout(1500)
    frame = framing.frames[-1]
    assert not await frame.query_selector("form")
    assert violations == []
    await context.close()

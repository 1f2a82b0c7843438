"""Renders every letter kind (de, en) from its contract's example into docs/letters/ for review.

``python -m tools.letters`` writes ``<kind>.<lang>.html`` and screenshots of each in headless
Chromium (Debian's, as the RSVP browser tests use) at 375 and 800 px:
``<kind>.<lang>.375.png`` / ``.800.png``. ``--mailpit URL`` also sends each German letter to
Mailpit (SMTP from ``SMTP_HOST``/``SMTP_PORT``) and prints its HTML check score.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path

from engagiert.notifications.rendering import Renderer, html_with_inline_images
from engagiert.shared.contracts.letters import LETTERS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "letters"
CHROMIUM = "/usr/bin/chromium"
WIDTHS = (375, 800)
BRANDING = {
    "municipality": "05774032",
    "name": "Stadt Paderborn",
    "contact_name": "Anlaufstelle für ehrenamtliches Engagement",
    "email": "ehrenamt@paderborn.example",
    "phone": "05251 88-11000",
    "address": "Am Abdinghof 11\n33098 Paderborn",
    "website": "https://www.paderborn.example/ehrenamt",
    "colour": "#005a9c",
}
MEMBER = {
    "given_name": "Anna-Lena Sophie Müßiggang-Özdemir",
    "family_name": "von Groß-Schönebeck-Ährenfeld",
    "email": "anna-lena@example.org",
}


def render_all() -> dict[str, str]:
    """Return file stem -> HTML (images inlined) of every kind in both languages."""
    renderer = Renderer()
    pages: dict[str, str] = {}
    for kind, model in sorted(LETTERS.items()):
        for lang in ("de", "en"):
            message = renderer.render(
                kind, language=lang, params=model.example().to_params(), member=MEMBER, branding=BRANDING
            )
            pages[f"{kind}.{lang}"] = html_with_inline_images(message)
    return pages


async def screenshot(pages: dict[str, str]) -> None:
    """Write a full-page PNG of each page at every width."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for width in WIDTHS:
                page = await browser.new_page(viewport={"width": width, "height": 800})
                for stem in pages:
                    await page.goto((OUT / f"{stem}.html").as_uri())
                    await page.screenshot(path=str(OUT / f"{stem}.{width}.png"), full_page=True)
                await page.close()
        finally:
            await browser.close()


async def check_in_mailpit(mailpit: str) -> int:
    """Send each German letter to Mailpit and print its HTML check score; return 1 if one is below 85 %."""
    import httpx

    from engagiert.notifications.mailer import SmtpMailer, compose

    mailer = SmtpMailer(host=os.environ.get("SMTP_HOST", "127.0.0.1"), port=int(os.environ.get("SMTP_PORT", "1025")))
    renderer = Renderer()
    run = uuid.uuid4().hex[:8]
    worst = 100.0
    async with httpx.AsyncClient(base_url=mailpit, timeout=30) as client:
        for kind, model in sorted(LETTERS.items()):
            message = renderer.render(
                kind, language="de", params=model.example().to_params(), member=MEMBER, branding=BRANDING
            )
            subject = f"[letters {run}] {message.subject}"
            await mailer.send(
                compose(
                    sender="Stadt Paderborn <no-reply@paderborn.example>",
                    to=MEMBER["email"],
                    subject=subject,
                    text=message.text,
                    html=message.html,
                    message_id=f"<letters-{run}-{kind}@paderborn.example>",
                    headers={},
                    calendar=message.calendar,
                    calendar_method=message.calendar_method,
                    images=message.images,
                )
            )
            found = (await client.get("/api/v1/search", params={"query": f'subject:"{run}" subject:"{kind}"'})).json()
            ids = [m["ID"] for m in found["messages"] if m["Subject"] == subject]
            if not ids:
                await asyncio.sleep(0.5)
                found = (await client.get("/api/v1/search", params={"query": f'subject:"{run}"'})).json()
                ids = [m["ID"] for m in found["messages"] if m["Subject"] == subject]
            check = (await client.get(f"/api/v1/message/{ids[0]}/html-check")).json()
            score = float(check["Total"]["Supported"]) + float(check["Total"].get("Partial", 0))
            worst = min(worst, score)
            print(f"{kind:20} supported {check['Total']['Supported']:.1f} %, partial {check['Total']['Partial']:.1f} %")
            for warning in check.get("Warnings", []):
                if warning["Score"]["Unsupported"] > 0:
                    print(f"    {warning['Title']}: unsupported {warning['Score']['Unsupported']:.0f} %")
    await mailer.close()
    return 0 if worst >= 85 else 1


def main(argv: list[str] | None = None) -> int:
    """Write the pages and screenshots; with ``--mailpit`` also check them in Mailpit."""
    parser = argparse.ArgumentParser(prog="python -m tools.letters")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--mailpit", help="Mailpit's HTTP address, e.g. http://127.0.0.1:8025")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    pages = render_all()
    for stem, html in pages.items():
        (OUT / f"{stem}.html").write_text(html, encoding="utf-8")
    if not args.no_screenshots:
        asyncio.run(screenshot(pages))
    print(f"wrote {len(pages)} letters to {OUT}")
    if args.mailpit:
        return asyncio.run(check_in_mailpit(args.mailpit))
    return 0


if __name__ == "__main__":
    sys.exit(main())

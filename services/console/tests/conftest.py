"""Fixtures of the console's browser tests: Keycloak, the three services and the console as processes, Chromium.

The console is signed in through Keycloak's own login page once per user while the browser tests
run (the contexts are reused); ``engagiert.console.testing`` starts the processes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from engagiert.console.testing import NotReady, Platform, sign_in, start_platform
from engagiert.shared.testing import StackEndpoints

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `deploy/local/stack.sh up` installs it
CONSOLE_DIR = Path(__file__).resolve().parents[1]
AXE = CONSOLE_DIR / "node_modules" / "axe-core" / "axe.min.js"
expect.set_options(timeout=20_000)  # how long `expect` waits for a page on a busy machine (not a speed claim)


# Module scope: the processes and browser contexts live while the browser tests run, not for the
# rest of a `make test` session (the faults tests restart the broker and the store after them).
@pytest.fixture(scope="module")
def platform(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Run registry, events, notifications and the console as processes; Paderborn and Bielefeld exist."""
    console_env = {
        # Keycloak's access tokens live 15 minutes: refreshing those older than 30 s exercises the
        # refresh on many requests of a test session.
        "CONSOLE_OIDC_REFRESH_MARGIN_SECONDS": str(15 * 60 - 30),
        "CONSOLE_LOG_LEVEL": "INFO",
    }
    try:
        # Logs of this session's own (ServiceProcess appends to its log file).
        running = start_platform(stack, log_dir=tmp_path_factory.mktemp("logs"), console_env=console_env)
    except NotReady as exc:
        pytest.fail(str(exc))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def signed_in(platform: Platform, browser: Browser) -> Callable[[str], Awaitable[BrowserContext]]:
    """Return a maker of browser contexts signed in as a local user (once per user and module)."""

    async def make(username: str) -> BrowserContext:
        if username not in platform.contexts:
            platform.contexts[username] = await sign_in(platform, browser, username)
        return platform.contexts[username]

    return make


@pytest.fixture
async def staff_page(signed_in: Callable[[str], Awaitable[BrowserContext]]) -> AsyncIterator[Page]:
    """Give a page of a context signed in as ``paderborn-staff``."""
    page = await (await signed_in("paderborn-staff")).new_page()
    yield page
    await page.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """Return axe-core's script (the version pinned in services/console/package.json; npm installs it if missing)."""
    if not AXE.exists():
        subprocess.run(
            ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"],
            cwd=CONSOLE_DIR,
            check=True,
            timeout=300,
        )
    return AXE.read_text(encoding="utf-8")

"""Fixtures of the console's browser tests: Keycloak, the three services and the console as processes, Chromium.

The services run as uvicorn processes with databases and consumer groups of their own and verify
Keycloak's tokens by its JWKS, as in production. The console runs as a process too, signed in
through Keycloak's own login page once per test session and user (the contexts are reused).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from engagiert.shared import topics
from engagiert.shared.testing import ServiceProcess, StackEndpoints, skip_history

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `deploy/local/stack.sh up` installs it
CONSOLE_DIR = Path(__file__).resolve().parents[1]
AXE = CONSOLE_DIR / "node_modules" / "axe-core" / "axe.min.js"
KEYCLOAK = os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080")
ISSUER = f"{KEYCLOAK}/realms/engagiert"
PASSWORD = "engagiert"  # the local realm's users (deploy/local/keycloak/engagiert-realm.json)
PADERBORN, BIELEFELD = "05774032", "05711000"
CONSOLE_PORT = 8000  # the local realm's console client redirects to 127.0.0.1:8000 only
CONSUMES = {
    "registry": [topics.REGISTRY_INBOUND],
    "events": [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT],
    "notifications": [topics.NOTIFICATIONS_REQUESTS, topics.REGISTRY_MEMBERS],
}
expect.set_options(timeout=20_000)  # how long `expect` waits for a page on a busy machine (not a speed claim)


@dataclass
class Platform:
    """The services and the console of one test session."""

    procs: dict[str, ServiceProcess]
    console: ServiceProcess
    run: str
    env: dict[str, str]
    contexts: dict[str, BrowserContext] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the console's base URL."""
        return self.console.url

    def service(self, name: str) -> str:
        """Return a service's base URL."""
        return self.procs[name].url


def keycloak_token(username: str) -> str:
    """Return an access token of a local user from Keycloak (the CLI client's password grant)."""
    response = httpx.post(
        f"{ISSUER}/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "engagiert-cli", "username": username, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _ensure_axe() -> None:
    """Install axe-core from the version pinned in package.json when it is missing (npm, no lock file)."""
    if AXE.exists():
        return
    subprocess.run(
        ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"],
        cwd=CONSOLE_DIR,
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def platform(stack: StackEndpoints) -> Iterator[Platform]:
    """Run registry, events, notifications and the console as processes; Paderborn and Bielefeld exist."""
    try:
        httpx.get(f"{ISSUER}/.well-known/openid-configuration", timeout=5).raise_for_status()
    except httpx.HTTPError:
        pytest.fail(f"Keycloak does not answer at {ISSUER}: `bash deploy/local/stack.sh up` starts it")
    if not _port_free(CONSOLE_PORT):
        pytest.fail(
            f"port {CONSOLE_PORT} is taken: the local realm lets the console sign in only from "
            f"127.0.0.1:{CONSOLE_PORT} (stop the console of `make up`: `bash deploy/local/stack.sh services-down`)"
        )
    run = uuid.uuid4().hex[:8]
    env = {
        **stack.env(),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "AUTH_JWKS_URL": f"{ISSUER}/protocol/openid-connect/certs",
        "AUTH_ISSUER": ISSUER,
        "NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2",
    }
    for name in CONSUMES:
        env[f"{name.upper()}_MONGODB_DATABASE"] = f"console_{name}_{run}"
        env[f"{name.upper()}_CONSUMER_GROUP"] = f"console-{name}-{run}"
        # The topics are shared with every other test: start where they end now.
        asyncio.run(skip_history(stack.kafka_bootstrap_servers, f"console-{name}-{run}", CONSUMES[name]))
    procs: dict[str, ServiceProcess] = {}
    console: ServiceProcess | None = None
    try:
        for name in CONSUMES:
            procs[name] = ServiceProcess(f"engagiert.{name}.main", env=env).start(wait_ready=120)
        console_env = {
            **env,
            "CONSOLE_PUBLIC_BASE_URL": f"http://127.0.0.1:{CONSOLE_PORT}",
            "CONSOLE_OIDC_ISSUER": ISSUER,
            "CONSOLE_REGISTRY_URL": procs["registry"].url,
            "CONSOLE_EVENTS_URL": procs["events"].url,
            "CONSOLE_NOTIFICATIONS_URL": procs["notifications"].url,
        }
        console = ServiceProcess("engagiert.console.main", env=console_env, port=CONSOLE_PORT).start(wait_ready=60)
        admin = {"Authorization": f"Bearer {keycloak_token('network-admin')}"}
        for ags, name in ((PADERBORN, "Paderborn"), (BIELEFELD, "Bielefeld")):
            created = httpx.post(
                procs["registry"].url + "/v1/municipalities",
                json={"ags": ags, "name": name, "kind": "Stadt"},
                headers=admin,
                timeout=30,
            )
            assert created.status_code == 201, created.text
        yield Platform(procs=procs, console=console, run=run, env=env)
    finally:
        if console is not None:
            console.stop()
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="session")
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


async def sign_in(browser: Browser, platform: Platform, username: str, **options: Any) -> BrowserContext:
    """Open the console, sign in on Keycloak's own login page as ``username``; return the signed-in context."""
    # bypass_csp: the axe audit injects its script; the console's CSP would (rightly) refuse it.
    context = await browser.new_context(locale="de-DE", bypass_csp=True, **options)
    page = await context.new_page()
    await page.goto(platform.url + "/")
    await page.wait_for_url(lambda url: url.startswith(KEYCLOAK), timeout=30_000)
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#kc-login").click()
    await page.wait_for_url(lambda url: url.startswith(platform.url), timeout=30_000)
    await page.close()
    return context


@pytest.fixture(scope="session")
def signed_in(platform: Platform, browser: Browser) -> Callable[[str], Awaitable[BrowserContext]]:
    """Return a maker of browser contexts signed in as a local user (once per user and session)."""

    async def make(username: str) -> BrowserContext:
        if username not in platform.contexts:
            platform.contexts[username] = await sign_in(browser, platform, username)
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
    """Return axe-core's script (the version pinned in services/console/package.json)."""
    _ensure_axe()
    return AXE.read_text(encoding="utf-8")

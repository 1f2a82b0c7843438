"""Test helpers shipped beside the console: run it with the three services as processes, sign in through Keycloak.

Used by the console's browser tests and by ``screenshots.py``. The services get databases and
consumer groups of their own and verify Keycloak's tokens by its JWKS, as in production.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Route

from engagiert.shared import topics
from engagiert.shared.testing import ServiceProcess, StackEndpoints, fresh_registry, skip_history
from engagiert.shared.testing.keycloak import LOCAL_ISSUER, LOCAL_PASSWORD, Keycloak, bearer
from engagiert.shared.testing.probes import drop_databases

PADERBORN, BIELEFELD = "05774032", "05711000"
CONSOLE_PORT = 8000  # the local realm's console client redirects to 127.0.0.1:8000 only
CONSUMES = {
    "registry": [topics.REGISTRY_INBOUND],
    "events": [topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT],
    "notifications": [topics.NOTIFICATIONS_REQUESTS, topics.REGISTRY_MEMBERS],
}


class NotReady(Exception):
    """Keycloak does not answer, or the console's port is taken."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Platform:
    """The three services and the console, as processes."""

    procs: dict[str, ServiceProcess]
    console: ServiceProcess
    run: str
    env: dict[str, str]
    keycloak: Keycloak
    contexts: dict[str, BrowserContext] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the console's base URL."""
        return self.console.url

    def service(self, name: str) -> str:
        """Return a service's base URL."""
        return self.procs[name].url

    def token(self, username: str) -> str:
        """Return a Keycloak access token of a local user (password grant of the CLI client)."""
        return self.keycloak.password_token(username)

    def stop(self) -> None:
        """Stop the console and the services; drop the services' databases."""
        self.console.stop()
        for proc in self.procs.values():
            proc.stop()
        names = [self.env[f"{name.upper()}_MONGODB_DATABASE"] for name in CONSUMES]
        asyncio.run(drop_databases(self.env["MONGODB_URL"], names))


def start_platform(
    stack: StackEndpoints,
    *,
    log_dir: Path,
    console_env: dict[str, str] | None = None,
    console_port: int | None = CONSOLE_PORT,
) -> Platform:
    """Start registry, events, notifications and the console; create Paderborn and Bielefeld.

    ``console_port=None`` runs the console on a free port (beside a console that holds 8000):
    ``sign_in`` then points the realm's redirect to 127.0.0.1:8000 at it. Raises NotReady when
    Keycloak does not answer, or when ``console_port`` is taken.
    """
    issuer = stack.keycloak_issuer or LOCAL_ISSUER
    try:
        httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5).raise_for_status()
    except httpx.HTTPError:
        raise NotReady(f"Keycloak does not answer at {issuer}: `bash deploy/local/stack.sh up` starts it") from None
    keycloak = Keycloak.from_issuer(issuer)
    if console_port is not None and not _port_free(console_port):
        raise NotReady(
            f"port {CONSOLE_PORT} is taken: the local realm lets the console sign in only from "
            f"127.0.0.1:{CONSOLE_PORT} (stop the console of `make up`: `bash deploy/local/stack.sh services-down`)"
        )
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
        env[f"{name.upper()}_MONGODB_DATABASE"] = f"console_{name}_{run}"
        env[f"{name.upper()}_CONSUMER_GROUP"] = f"console-{name}-{run}"
        # The topics are shared with every other test: start where they end now.
        asyncio.run(skip_history(stack.kafka_bootstrap_servers, f"console-{name}-{run}", CONSUMES[name]))
    env.update(asyncio.run(fresh_registry(stack.kafka_bootstrap_servers, group=f"console-registry-{run}", run=run)))
    procs: dict[str, ServiceProcess] = {}
    started: list[ServiceProcess] = []
    try:
        for name in CONSUMES:
            procs[name] = ServiceProcess(f"engagiert.{name}.main", env=env, log_dir=log_dir)
            started.append(procs[name])
            procs[name].start(wait_ready=120)
            if name == "registry":  # it holds the members' keys (crypto-shredding): the others ask it
                env["MEMBER_KEYS_URL"] = procs[name].url
        console = ServiceProcess(
            "engagiert.console.main",
            env={
                **env,
                "CONSOLE_PUBLIC_BASE_URL": f"http://127.0.0.1:{CONSOLE_PORT}",
                "CONSOLE_OIDC_ISSUER": issuer,
                "CONSOLE_REGISTRY_URL": procs["registry"].url,
                "CONSOLE_EVENTS_URL": procs["events"].url,
                "CONSOLE_NOTIFICATIONS_URL": procs["notifications"].url,
                **(console_env or {}),
            },
            port=console_port,
            log_dir=log_dir,
        )
        started.append(console)
        console.start(wait_ready=60)
        admin = bearer(keycloak.password_token("network-admin"))
        for ags, name in ((PADERBORN, "Paderborn"), (BIELEFELD, "Bielefeld")):
            created = httpx.post(
                procs["registry"].url + "/v1/municipalities",
                json={"ags": ags, "name": name, "kind": "Stadt"},
                headers=admin,
                timeout=30,
            )
            if created.status_code != 201:
                raise RuntimeError(f"creating {name} failed: {created.status_code} {created.text}")
    except BaseException:
        for proc in started:
            proc.stop()
        raise
    return Platform(procs=procs, console=console, run=run, env=env, keycloak=keycloak)


async def sign_in(platform: Platform, browser: Browser, username: str, **options: Any) -> BrowserContext:
    """Open the console, sign in on Keycloak's own login page as ``username``; return the signed-in context."""
    url = platform.url
    # bypass_csp: the axe audit injects its script; the console's CSP would (rightly) refuse it.
    context = await browser.new_context(locale="de-DE", bypass_csp=True, **options)
    public = f"http://127.0.0.1:{CONSOLE_PORT}"
    if url != public:
        # The realm sends the code back to 127.0.0.1:8000 only, and a browser follows that redirect
        # without asking a route: the login form's answer is fetched here and its Location pointed at
        # this console (Keycloak's page, the code and its exchange stay the real ones).
        async def to_console(route: Route) -> None:
            response = await route.fetch(max_redirects=0)
            headers = dict(response.headers)
            location = headers.get("location", "")
            if location.startswith(public + "/"):
                headers["location"] = url + location.removeprefix(public)
            await route.fulfill(response=response, headers=headers)

        await context.route(re.compile(re.escape(platform.keycloak.url) + r"/.*/login-actions/"), to_console)
    page = await context.new_page()
    await page.goto(url + "/")
    await page.wait_for_url(lambda u: u.startswith(platform.keycloak.url), timeout=90_000)
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(LOCAL_PASSWORD)
    await page.locator("#kc-login").click()
    await page.wait_for_url(lambda u: u.startswith(url), timeout=90_000)
    await page.close()
    return context

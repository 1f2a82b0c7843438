"""Limits the rate of the public routes per client: 429 with ``Retry-After`` once a client used its quota.

The counting is the ``limits`` library's moving window in this process's memory (each replica
counts for itself, so a limit of N per minute allows N x replicas behind a load balancer). The
client is the TCP peer; behind a reverse proxy listed in ``TRUSTED_PROXIES`` it is the nearest
address in ``X-Forwarded-For`` that is not a trusted proxy, so a client cannot pick its own
identity by sending that header.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from engagiert.shared.edges import RouteRules, client_address, send_problem
from engagiert.shared.logging import get_logger
from engagiert.shared.metrics import RATE_LIMITED

log = get_logger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """Return the networks of a comma-separated list of addresses and CIDR ranges."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


class RateLimitMiddleware:
    """Count requests per client and route rule; answer 429 problem+json with ``Retry-After`` over the rate."""

    def __init__(self, app: ASGIApp, *, rules: RouteRules, trusted_proxies: Sequence[Network] = ()) -> None:
        self.app = app
        self.rules = rules
        self.trusted_proxies = list(trusted_proxies)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[str, RateLimitItem] = {}

    def _item(self, rate: str) -> RateLimitItem:
        if rate not in self._items:
            self._items[rate] = parse(rate)
        return self._items[rate]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rules.find(scope, "rate")
        if rule is None or rule.rate is None:
            await self.app(scope, receive, send)
            return
        item = self._item(rule.rate)
        client = client_address(scope, trusted_proxies=self.trusted_proxies)
        if self._limiter.hit(item, rule.template, client):
            await self.app(scope, receive, send)
            return
        reset_at = self._limiter.get_window_stats(item, rule.template, client).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        RATE_LIMITED.labels(route=rule.template).inc()
        log.info("rate_limited", route=rule.template, retry_after=retry_after)
        await send_problem(
            send,
            429,
            "Too many requests",
            f"this route takes {rule.rate} per client; try again in {retry_after} s",
            headers=[(b"retry-after", str(retry_after).encode())],
        )

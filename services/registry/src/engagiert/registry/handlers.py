"""Consumes ``registry.inbound.v1``: parses commands and calls the use cases.

Inbound Kafka carries no token. Who may publish a command for a municipality is decided by the
topic's ACLs (only the systems of that municipality and our own services may write to
``registry.inbound.v1``); the handler checks that the municipality exists and dead-letters
commands for unknown ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engagiert.registry.services import RegistryService
from engagiert.shared.envelope import Envelope
from engagiert.shared.messaging.consumer import BatchHandler


def inbound_handler(service: Callable[[], RegistryService]) -> BatchHandler:
    """Return the batch handler of the inbound topic (``service`` gives the use cases once the store is bound)."""

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        await service().inbound.apply_inbound(events)

    return handle

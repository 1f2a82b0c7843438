"""Consumes the inbound topics and the erasure confirmations: parses commands and calls the use cases.

Inbound Kafka carries no token. Who wrote a record is decided by the broker: each connected system
has a topic of its own (``registry.inbound.<system>.v1``) that only its Kafka user may write, and
before a batch reaches the handler the consumer asks :meth:`Systems.admit` whether that system may
send each command for its municipality (refused ones are dead-lettered as ``not-authorised``).
``registry.inbound.v1`` is the operators' channel (only the Kafka super user writes it, and
notifications its unsubscribes);
``registry.erasure-confirmations.v1`` only events and notifications may write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engagiert.registry.services import RegistryService
from engagiert.shared.contracts import ConfirmErasure
from engagiert.shared.envelope import Envelope
from engagiert.shared.messaging.consumer import Admit, BatchHandler


def inbound_handler(service: Callable[[], RegistryService]) -> BatchHandler:
    """Return the batch handler of the inbound topics (``service`` gives the use cases once the store is bound)."""

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        await service().inbound.apply_inbound(events)

    return handle


def systems_admit(service: Callable[[], RegistryService]) -> Admit:
    """Return the check of inbound commands against their connected system's grant."""

    async def admit(items: Sequence[tuple[str, Envelope[Any]]]) -> Mapping[str, str]:
        return await service().systems.admit(items)

    return admit


def confirmations_handler(service: Callable[[], RegistryService]) -> BatchHandler:
    """Return the batch handler of the erasure confirmations."""

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        for e in events:
            if isinstance(e.data, ConfirmErasure):
                await service().erasure.confirm_erasure(e.data)

    return handle

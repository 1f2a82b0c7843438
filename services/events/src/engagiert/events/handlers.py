"""Subscribes to the registry's topics: parse the batch, hand it to the read-model use case."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engagiert.events.services import EventsService
from engagiert.shared.envelope import Envelope
from engagiert.shared.messaging.consumer import BatchHandler


def member_events_handler(use_cases: Callable[[], EventsService]) -> BatchHandler:
    """Return the batch handler for ``registry.members.v1`` and ``registry.engagement.v1``."""

    async def handle(events: Sequence[Envelope[Any]]) -> None:
        await use_cases().member_read_model.apply_member_events(events)

    return handle

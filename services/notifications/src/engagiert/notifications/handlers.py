"""Kafka subscribers: parse (done by the shared consumer) and call a use case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagiert.notifications.services import Contacts, Requests
from engagiert.shared.envelope import Envelope
from engagiert.shared.messaging.consumer import BatchHandler


def members_handler(contacts: Contacts) -> BatchHandler:
    """Return the handler of ``registry.members.v1``: keeps the contacts read model."""

    async def handle_members(events: Sequence[Envelope[Any]]) -> None:
        await contacts.apply_member_events(events)

    return handle_members


def requests_handler(requests: Requests) -> BatchHandler:
    """Return the handler of ``notifications.requests.v1``: queues and cancels deliveries."""

    async def handle_requests(events: Sequence[Envelope[Any]]) -> None:
        await requests.apply_requests(events)

    return handle_requests

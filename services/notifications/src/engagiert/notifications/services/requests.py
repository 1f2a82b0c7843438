"""Requests and scheduling: queue each requested delivery for its time, once, and withdraw cancelled ones."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engagiert.notifications import domain
from engagiert.notifications.domain import utcnow
from engagiert.notifications.repository import Doc, Repository
from engagiert.shared.contracts import NotificationCancelRequested, NotificationRequested
from engagiert.shared.envelope import Envelope
from engagiert.shared.logging import get_logger

log = get_logger(__name__)


@dataclass(kw_only=True)
class Requests:
    """Turns requests into queued deliveries and applies cancellations; wakes the sender."""

    repo: Repository
    wake: asyncio.Event
    """The sender's wake-up (``Sender.wake``): set when a delivery was queued."""

    async def apply_requests(self, events: Sequence[Envelope[Any]]) -> None:
        """Queue requested deliveries (idempotent by event id) and apply cancellations, in order."""
        now = utcnow()
        pending: list[Doc] = []
        for env in events:
            data = env.data
            if isinstance(data, NotificationRequested):
                pending.append(self._new_delivery(env.id, data, now))
            elif isinstance(data, NotificationCancelRequested):
                await self.repo.insert_deliveries(pending)
                pending = []
                count = await self.repo.cancel(
                    municipality=data.municipality, cancel_key=data.cancel_key, member_id=data.member_id, now=now
                )
                log.info("deliveries_cancelled", municipality=data.municipality, count=count, event_id=env.id)
        inserted = await self.repo.insert_deliveries(pending)
        if inserted:
            self.wake.set()

    def _new_delivery(self, event_id: str, data: NotificationRequested, now: datetime) -> Doc:
        not_before = max(data.not_before, now) if data.not_before else now
        return {
            "_id": domain.delivery_id_for(event_id),
            "request_id": event_id,
            "municipality": data.municipality,
            "member_id": data.member_id,
            "template": data.template,
            "params": dict(data.params),
            "channel": data.channel,
            "not_before": not_before,
            "cancel_key": data.cancel_key,
            "status": "queued",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }

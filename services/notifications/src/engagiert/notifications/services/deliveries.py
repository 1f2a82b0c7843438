"""The delivery log: list and read a municipality's deliveries, and resend one as a new delivery."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from engagiert.notifications.domain import utcnow
from engagiert.notifications.repository import Doc, Repository


@dataclass(kw_only=True)
class DeliveryLog:
    """Answers the staff's questions about deliveries and queues resends; wakes the sender."""

    repo: Repository
    wake: asyncio.Event
    """The sender's wake-up (``Sender.wake``): set when a resend was queued."""

    async def find(
        self,
        municipality: str,
        *,
        member_id: str | None,
        request_id: str | None,
        status: str | None,
        limit: int,
        skip: int,
    ) -> list[Doc]:
        """Return a municipality's deliveries (with the server's answers), newest first, filtered."""
        return await self.repo.list_deliveries(
            municipality, member_id=member_id, request_id=request_id, status=status, limit=limit, skip=skip
        )

    async def get(self, municipality: str, delivery_id: str) -> Doc | None:
        """Return one delivery of a municipality; None if unknown."""
        return await self.repo.delivery(municipality, delivery_id)

    async def resend(self, municipality: str, delivery_id: str) -> Doc | None:
        """Queue a new delivery with the same request as ``delivery_id`` (staff action); None if unknown."""
        original = await self.repo.delivery(municipality, delivery_id)
        if original is None:
            return None
        if original["status"] in ("queued", "sending"):
            raise ValueError("the delivery is still queued or being sent")
        number = await self.repo.count_resend(delivery_id)
        now = utcnow()
        doc: Doc = {
            "_id": f"{delivery_id}-r{number}",
            "request_id": original["request_id"],
            "municipality": municipality,
            "member_id": original["member_id"],
            "template": original["template"],
            "params": original.get("params") or {},
            "channel": original.get("channel", "email"),
            "not_before": now,
            "cancel_key": None,
            "status": "queued",
            "attempts": 0,
            "resend_of": delivery_id,
            "created_at": now,
            "updated_at": now,
        }
        if original.get("content_erased"):
            doc["content_erased"] = True
        await self.repo.insert_delivery(doc)
        self.wake.set()
        return doc

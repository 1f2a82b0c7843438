"""Publishes serialised CloudEvent records through the service's FastStream Kafka broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.metrics import PUBLISHED


class RecordPublisher:
    """Sends records and waits until the broker acknowledged every one of them."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        """Send ``records`` in order (per key) and return once all are acknowledged; raise otherwise."""
        if not records:
            return
        futures = []
        for record in records:
            future = await self._broker.publish(
                record.value,
                record.topic,
                key=record.key.encode(),
                headers={k: v.decode() for k, v in record.headers.items()},
                no_confirm=True,
            )
            futures.append(future)
        await asyncio.gather(*futures)
        for record in records:
            PUBLISHED.labels(topic=record.topic).inc()

    async def send(self, record: OutgoingRecord) -> None:
        """Send one record and wait for the acknowledgement."""
        await self.send_many([record])

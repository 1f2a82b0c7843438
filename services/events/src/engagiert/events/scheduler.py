"""Runs the service's timed work in the background: unfinished cancellation mails, honour expiry and renewal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from engagiert.events.services import EventsService
from engagiert.shared.logging import get_logger

log = get_logger(__name__)


def scheduler_loop(
    use_cases: Callable[[], EventsService], interval_seconds: float
) -> Callable[[], Coroutine[Any, Any, None]]:
    """Return the loop the runtime starts with the app and cancels at shutdown."""

    async def events_scheduler() -> None:
        while True:
            try:
                done = await use_cases().run_due_work()
                if any(done.values()):
                    log.info("scheduled_work_done", **done)
            except Exception as exc:  # store or broker away: try again next round
                log.warning("scheduled_work_failed", error=type(exc).__name__)
            await asyncio.sleep(interval_seconds)

    return events_scheduler

"""Waiting in tests: poll a check until it holds, or fail saying what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 60.0,
    what: str = "",
    every: float = 0.3,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """Return the first truthy result of ``check()``; fail after ``timeout`` seconds naming ``what``.

    Exceptions of the types in ``retry_on`` count as "not yet" (e.g. a service still starting).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
            if last:
                return last
        except retry_on as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or 'the condition'}; last: {last!r}")
        await asyncio.sleep(every)

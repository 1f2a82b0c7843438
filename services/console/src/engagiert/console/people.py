"""Looks up members' names in the registry for pages of other services, which show ids only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from engagiert.console import clients

CONCURRENT_LOOKUPS = 8
"""At most this many registry calls at once per page (the events and honours lists carry ids only)."""


async def member_names(api: clients.Services, ags: str, member_ids: Iterable[str]) -> dict[str, str]:
    """Return "Family, Given" per member id; an erased or unknown member is left out."""
    wanted = list(dict.fromkeys(member_ids))
    gate = asyncio.Semaphore(CONCURRENT_LOOKUPS)

    async def one(member_id: str) -> tuple[str, str | None]:
        async with gate:
            try:
                member = await api.registry.member(ags, member_id)
            except clients.NotFound:
                return member_id, None
        return member_id, f"{member.family_name}, {member.given_name}"

    found = await asyncio.gather(*(one(m) for m in wanted))
    return {member_id: name for member_id, name in found if name is not None}

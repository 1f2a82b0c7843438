"""Looks up members' names in the registry for pages of other services, which show ids only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from engagiert.console import clients


async def member_names(api: clients.Services, ags: str, member_ids: Iterable[str]) -> dict[str, str]:
    """Return "Family, Given" per member id, one registry call per 100 ids; erased or unknown ones are left out."""
    wanted = list(dict.fromkeys(member_ids))
    size = clients.MEMBERS_PER_LOOKUP
    pages = await asyncio.gather(
        *(api.registry.members_by_id(ags, wanted[i : i + size]) for i in range(0, len(wanted), size))
    )
    return {m.member_id: f"{m.family_name}, {m.given_name}" for page in pages for m in page}

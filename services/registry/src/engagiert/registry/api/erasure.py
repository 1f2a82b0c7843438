"""Serves erasure (DSGVO Art. 17): erase a member and show the services' confirmations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engagiert.registry.api.deps import Service, problems
from engagiert.shared.auth import Reader, Staff

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["members"])


@router.delete("/members/{member_id}", status_code=202, summary="Erase a member (DSGVO Art. 17)")
async def erase_member(ags: str, member_id: str, _p: Staff, service: Service) -> dict[str, Any]:
    async with problems():
        return await service.erasure.erase(ags, member_id)


@router.get("/members/{member_id}/erasure", summary="Show which services confirmed an erasure")
async def erasure_status(ags: str, member_id: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with problems():
        return await service.erasure.erasure_status(ags, member_id)

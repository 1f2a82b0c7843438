"""Serves the hours: record them for one member or for many at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from engagiert.registry.api.deps import Service, problems
from engagiert.registry.domain import HoursBulkItem, HoursIn
from engagiert.shared.auth import Staff
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["members"])


@router.post("/members/{member_id}/hours", status_code=201, summary="Record hours of a member")
async def record_hours(ags: str, member_id: str, body: HoursIn, principal: Staff, service: Service) -> dict[str, Any]:
    async with problems():
        recorded = await service.hours.record_hours(ags, [(member_id, body)], reported_by=principal.subject)
    return recorded[0]


@router.post("/hours", status_code=201, summary="Record hours of several members at once")
async def record_hours_bulk(
    ags: str, body: Annotated[list[HoursBulkItem], "max 1000"], principal: Staff, service: Service
) -> dict[str, Any]:
    if not body or len(body) > 1000:
        raise Problem(422, "Invalid request", "send between 1 and 1000 entries")
    async with problems():
        recorded = await service.hours.record_hours(
            ags, [(i.member_id, i) for i in body], reported_by=principal.subject
        )
    return {"recorded": recorded}

"""Serves the members: register, list, read, change, status and consent."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from engagiert.registry.api.deps import Service, problems
from engagiert.registry.domain import MemberCreate, MemberUpdate, StatusChange
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.contracts.base import Field_, MemberStatus
from engagiert.shared.problems import Problem

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_IDS = 100
"""How many members one list call may name with ``id`` (a page of another service's ids)."""


def _encode_cursor(member_id: str | None) -> str | None:
    return base64.urlsafe_b64encode(member_id.encode()).decode() if member_id else None


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        member_id = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        member_id = ""
    if not _ID.fullmatch(member_id):
        raise Problem(400, "Invalid cursor", "pass the 'next_cursor' of the previous page")
    return member_id


router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["members"])


@router.post("/members", status_code=201, summary="Register a member (409 for a duplicate or an erased person)")
async def register_member(
    ags: str,
    body: MemberCreate,
    _p: Staff,
    service: Service,
    allow_previously_erased: Annotated[
        bool,
        Query(description="register a person erased before, who asked to come back (409 without it)"),
    ] = False,
) -> dict[str, Any]:
    async with problems():
        return await service.members.register(ags, body, allow_previously_erased=allow_previously_erased)


@router.get("/members", summary="List members with filters and cursor pagination")
async def list_members(
    ags: str,
    _p: Reader,
    service: Service,
    status: MemberStatus | None = None,
    organisation_id: str | None = None,
    field: Field_ | None = None,
    name: Annotated[str | None, Query(max_length=100, description="part of the name, case-insensitive")] = None,
    ids: Annotated[
        list[Annotated[str, StringConstraints(pattern=rf"^{_ID.pattern}$")]] | None,
        Query(alias="id", max_length=MAX_IDS, description=f"only these members (repeat, at most {MAX_IDS})"),
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    items, next_id = await service.members.list_members(
        ags,
        status=status,
        organisation_id=organisation_id,
        field=field,
        name=name,
        ids=ids,
        cursor=_decode_cursor(cursor),
        limit=limit,
    )
    return {"items": items, "next_cursor": _encode_cursor(next_id)}


@router.get("/members/{member_id}", summary="Read a member with derived figures")
async def get_member(ags: str, member_id: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with problems():
        return await service.members.member(ags, member_id)


@router.patch("/members/{member_id}", summary="Change a member")
async def update_member(ags: str, member_id: str, body: MemberUpdate, _p: Staff, service: Service) -> dict[str, Any]:
    async with problems():
        return await service.members.update(ags, member_id, body)


@router.post("/members/{member_id}/status", summary="Change a member's status")
async def change_status(ags: str, member_id: str, body: StatusChange, _p: Staff, service: Service) -> dict[str, Any]:
    async with problems():
        return await service.members.change_status(ags, member_id, body.status)


@router.post("/members/{member_id}/consent/withdraw", summary="Withdraw a member's consent")
async def withdraw_consent(ags: str, member_id: str, _p: Staff, service: Service) -> dict[str, Any]:
    async with problems():
        return await service.members.withdraw_consent(ags, member_id)

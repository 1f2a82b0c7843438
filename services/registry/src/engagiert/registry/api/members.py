"""Serves the registry's HTTP API: parse, authorise, call a use case."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from engagiert.registry.domain import (
    HoursBulkItem,
    HoursIn,
    MemberCreate,
    MemberUpdate,
    MunicipalityCreate,
    MunicipalityUpdate,
    OrganisationCreate,
    OrganisationUpdate,
    StatusChange,
)
from engagiert.registry.services import (
    AlreadyExists,
    DuplicateMember,
    InvalidChange,
    NotFound,
    RegistryService,
)
from engagiert.shared.auth import NetworkAdmin, Reader, Staff
from engagiert.shared.contracts.base import Field_, MemberStatus
from engagiert.shared.problems import Problem

MAX_IMPORT_BYTES = 20 * 1024 * 1024
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def get_service(request: Request) -> RegistryService:
    """Return the service's use cases (created at start)."""
    service: RegistryService = request.app.state.registry
    return service


Service = Annotated[RegistryService, Depends(get_service)]


@asynccontextmanager
async def _problems() -> AsyncIterator[None]:
    """Translate use-case errors into problem+json (404 never says whether the id exists elsewhere)."""
    try:
        yield
    except NotFound:
        raise Problem(404, "Not found", "no such resource") from None
    except DuplicateMember as exc:
        raise Problem(
            409,
            "Duplicate member",
            "a member with the same e-mail, or the same name and date of birth, exists",
            extra={"existing_member_id": exc.existing_id},
        ) from None
    except AlreadyExists:
        raise Problem(409, "Already exists", "a resource with this key exists") from None
    except InvalidChange as exc:
        raise Problem(422, "Invalid change", str(exc)) from None


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


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    if "_id" in doc:
        out["id"] = doc["_id"]
    return out


municipalities = APIRouter(prefix="/v1/municipalities", tags=["municipalities"])


@municipalities.post("", status_code=201, summary="Create a municipality (network-admin)")
async def create_municipality(body: MunicipalityCreate, _p: NetworkAdmin, service: Service) -> dict[str, Any]:
    async with _problems():
        return _public(await service.create_municipality(body))


@municipalities.get("", summary="List municipalities (network-admin)")
async def list_municipalities(_p: NetworkAdmin, service: Service) -> list[dict[str, Any]]:
    return [_public(d) for d in await service.repo.list_municipalities()]


@municipalities.get("/{ags}", summary="Read a municipality")
async def get_municipality(ags: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with _problems():
        return _public(await service.municipality(ags))


@municipalities.patch("/{ags}", summary="Change a municipality (network-admin)")
async def update_municipality(
    ags: str, body: MunicipalityUpdate, principal: NetworkAdmin, service: Service
) -> dict[str, Any]:
    async with _problems():
        return _public(await service.update_municipality(ags, body))


organisations = APIRouter(prefix="/v1/municipalities/{ags}/organisations", tags=["organisations"])


@organisations.post("", status_code=201, summary="Create an organisation")
async def create_organisation(ags: str, body: OrganisationCreate, _p: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        return _public(await service.create_organisation(ags, body))


@organisations.get("", summary="List the organisations")
async def list_organisations(ags: str, _p: Reader, service: Service) -> list[dict[str, Any]]:
    return [_public(d) for d in await service.repo.list_organisations(ags)]


@organisations.get("/{org_id}", summary="Read an organisation")
async def get_organisation(ags: str, org_id: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with _problems():
        return _public(await service.organisation(ags, org_id))


@organisations.patch("/{org_id}", summary="Change an organisation")
async def update_organisation(
    ags: str, org_id: str, body: OrganisationUpdate, _p: Staff, service: Service
) -> dict[str, Any]:
    async with _problems():
        return _public(await service.update_organisation(ags, org_id, body))


@organisations.delete("/{org_id}", status_code=204, summary="Delete an organisation")
async def delete_organisation(ags: str, org_id: str, _p: Staff, service: Service) -> Response:
    if not await service.repo.delete_organisation(ags, org_id):
        raise Problem(404, "Not found", "no such resource")
    return Response(status_code=204)


members = APIRouter(prefix="/v1/municipalities/{ags}", tags=["members"])


@members.post("/members", status_code=201, summary="Register a member (409 for a duplicate)")
async def register_member(ags: str, body: MemberCreate, _p: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.register(ags, body)


@members.get("/members", summary="List members with filters and cursor pagination")
async def list_members(
    ags: str,
    _p: Reader,
    service: Service,
    status: MemberStatus | None = None,
    organisation_id: str | None = None,
    field: Field_ | None = None,
    name: Annotated[str | None, Query(max_length=100, description="part of the name, case-insensitive")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    items, next_id = await service.list_members(
        ags,
        status=status,
        organisation_id=organisation_id,
        field=field,
        name=name,
        cursor=_decode_cursor(cursor),
        limit=limit,
    )
    return {"items": items, "next_cursor": _encode_cursor(next_id)}


@members.get("/members.csv", summary="Export the members as CSV", response_class=Response)
async def export_members(ags: str, _p: Reader, service: Service) -> Response:
    async with _problems():
        text = await service.export_csv(ags)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="members-{ags}.csv"'},
    )


@members.post("/members/import", summary="Import members from CSV (dry_run=true only validates)")
async def import_members(
    ags: str,
    _p: Staff,
    service: Service,
    file: Annotated[UploadFile, File(description="CSV with the columns of the export")],
    dry_run: bool = False,
) -> JSONResponse:
    content = await file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise Problem(413, "File too large", f"at most {MAX_IMPORT_BYTES} bytes")
    async with _problems():
        report = await service.import_csv(ags, content, dry_run=dry_run)
    body = {
        "dry_run": report.dry_run,
        "rows": report.rows,
        "created": report.created,
        "skipped_existing": report.skipped_existing,
        "errors": [asdict(e) for e in report.errors],
    }
    if report.errors and not dry_run:
        raise Problem(422, "Invalid file", f"{len(report.errors)} rows have errors; nothing was imported", extra=body)
    return JSONResponse(body)


@members.get("/members/{member_id}", summary="Read a member with derived figures")
async def get_member(ags: str, member_id: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.member(ags, member_id)


@members.patch("/members/{member_id}", summary="Change a member")
async def update_member(ags: str, member_id: str, body: MemberUpdate, _p: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.update(ags, member_id, body)


@members.post("/members/{member_id}/status", summary="Change a member's status")
async def change_status(ags: str, member_id: str, body: StatusChange, _p: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.change_status(ags, member_id, body.status)


@members.post("/members/{member_id}/consent/withdraw", summary="Withdraw a member's consent")
async def withdraw_consent(ags: str, member_id: str, _p: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.withdraw_consent(ags, member_id)


@members.post("/members/{member_id}/hours", status_code=201, summary="Record hours of a member")
async def record_hours(ags: str, member_id: str, body: HoursIn, principal: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        recorded = await service.record_hours(ags, [(member_id, body)], reported_by=principal.subject)
    return recorded[0]


@members.post("/hours", status_code=201, summary="Record hours of several members at once")
async def record_hours_bulk(
    ags: str, body: Annotated[list[HoursBulkItem], "max 1000"], principal: Staff, service: Service
) -> dict[str, Any]:
    if not body or len(body) > 1000:
        raise Problem(422, "Invalid request", "send between 1 and 1000 entries")
    async with _problems():
        recorded = await service.record_hours(ags, [(i.member_id, i) for i in body], reported_by=principal.subject)
    return {"recorded": recorded}


@members.delete("/members/{member_id}", status_code=202, summary="Erase a member (DSGVO Art. 17)")
async def erase_member(ags: str, member_id: str, _p: Staff, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.erase(ags, member_id)


@members.get("/members/{member_id}/erasure", summary="Show which services confirmed an erasure")
async def erasure_status(ags: str, member_id: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with _problems():
        return await service.erasure_status(ags, member_id)


ROUTERS: tuple[APIRouter, ...] = (municipalities, organisations, members)

__all__ = ["ROUTERS", "get_service"]

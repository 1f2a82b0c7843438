"""Serves the organisations of a municipality."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from engagiert.registry.api.deps import Service, problems, public
from engagiert.registry.domain import OrganisationCreate, OrganisationUpdate
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/v1/municipalities/{ags}/organisations", tags=["organisations"])


@router.post("", status_code=201, summary="Create an organisation")
async def create_organisation(ags: str, body: OrganisationCreate, _p: Staff, service: Service) -> dict[str, Any]:
    async with problems():
        return public(await service.organisations.create_organisation(ags, body))


@router.get("", summary="List the organisations")
async def list_organisations(ags: str, _p: Reader, service: Service) -> list[dict[str, Any]]:
    return [public(d) for d in await service.repo.list_organisations(ags)]


@router.get("/{org_id}", summary="Read an organisation")
async def get_organisation(ags: str, org_id: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with problems():
        return public(await service.organisations.organisation(ags, org_id))


@router.patch("/{org_id}", summary="Change an organisation")
async def update_organisation(
    ags: str, org_id: str, body: OrganisationUpdate, _p: Staff, service: Service
) -> dict[str, Any]:
    async with problems():
        return public(await service.organisations.update_organisation(ags, org_id, body))


@router.delete("/{org_id}", status_code=204, summary="Delete an organisation")
async def delete_organisation(ags: str, org_id: str, _p: Staff, service: Service) -> Response:
    if not await service.repo.delete_organisation(ags, org_id):
        raise Problem(404, "Not found", "no such resource")
    return Response(status_code=204)

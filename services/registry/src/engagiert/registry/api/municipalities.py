"""Serves the municipalities: create, list, read and change them (network-admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engagiert.registry.api.deps import Service, problems, public
from engagiert.registry.domain import MunicipalityCreate, MunicipalityUpdate
from engagiert.shared.auth import NetworkAdmin, Reader

router = APIRouter(prefix="/v1/municipalities", tags=["municipalities"])


@router.post("", status_code=201, summary="Create a municipality (network-admin)")
async def create_municipality(body: MunicipalityCreate, _p: NetworkAdmin, service: Service) -> dict[str, Any]:
    async with problems():
        return public(await service.municipalities.create_municipality(body))


@router.get("", summary="List municipalities (network-admin)")
async def list_municipalities(_p: NetworkAdmin, service: Service) -> list[dict[str, Any]]:
    return [public(d) for d in await service.repo.list_municipalities()]


@router.get("/{ags}", summary="Read a municipality")
async def get_municipality(ags: str, _p: Reader, service: Service) -> dict[str, Any]:
    async with problems():
        return public(await service.municipalities.municipality(ags))


@router.patch("/{ags}", summary="Change a municipality (network-admin)")
async def update_municipality(
    ags: str, body: MunicipalityUpdate, principal: NetworkAdmin, service: Service
) -> dict[str, Any]:
    async with problems():
        return public(await service.municipalities.update_municipality(ags, body))

"""Serves the connected systems of a municipality to its staff: who may send commands for it (read-only).

Operators connect and revoke systems with ``python -m engagiert.registry.systems`` (it needs
Kafka's operator credentials, which the service does not hold); no secret is ever served.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engagiert.registry.api.deps import Service, problems
from engagiert.registry.services.systems import public_view
from engagiert.shared.auth import Reader

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["connected systems"])


@router.get("/systems", summary="List the connected systems that may act for this municipality (revoked ones too)")
async def list_systems(ags: str, _p: Reader, service: Service) -> list[dict[str, Any]]:
    async with problems():
        await service.municipalities.municipality(ags)  # 404 for an unknown municipality
        found = [public_view(d) for d in await service.systems.list() if ags in (d.get("municipalities") or [])]
    # Staff of one municipality learn nothing about others: not the system's other municipalities, not its user.
    return [{k: v for k, v in s.items() if k not in ("municipalities", "user")} for s in found]

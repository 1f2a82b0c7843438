"""Serves members' data keys to the platform's own services (crypto-shredding), never to people or systems."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from engagiert.registry.api.deps import Service
from engagiert.shared.contracts.base import EntityId
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/internal/v1", tags=["internal"])


class KeysRequest(BaseModel):
    """The members whose keys a service needs."""

    model_config = ConfigDict(extra="forbid")

    member_ids: list[EntityId] = Field(min_length=1, max_length=1000)


def _authorise(request: Request, authorization: str | None) -> None:
    expected: str = request.app.state.member_keys_token
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(401, "Invalid token", "member keys are for the platform's services only")


UNAUTHORISED = {
    401: {
        "description": "Not the platform services' token (MEMBER_KEYS_TOKEN)",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}


@router.post(
    "/member-keys",
    summary="Return members' data keys (services only; erased members have none)",
    responses=UNAUTHORISED,  # type: ignore[arg-type]
)
async def member_keys(
    body: KeysRequest,
    request: Request,
    service: Service,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    _authorise(request, authorization)
    found = await service.repo.member_keys_of(body.member_ids)
    return {
        "keys": {m: key.to_wire() for m, key in found.items() if key is not None},
        "shredded": sorted(m for m, key in found.items() if key is None),
    }

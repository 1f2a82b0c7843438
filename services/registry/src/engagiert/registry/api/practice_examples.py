"""Serves the network's practice examples: staff of the author's municipality write, every network member reads."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response

from engagiert.registry.api.deps import Service, problems, public
from engagiert.registry.domain import PracticeExampleCreate, PracticeExampleUpdate
from engagiert.registry.repository import Doc
from engagiert.shared.auth import Principal, Staff, require
from engagiert.shared.contracts.base import Field_
from engagiert.shared.contracts.members import MunicipalityKind
from engagiert.shared.problems import Problem

router = APIRouter(tags=["practice examples"])

NetworkMember = Annotated[Principal, Depends(require("reader"))]
"""Any signed-in member of the network: staff or readers of any municipality, network admins."""

_OWN = "/v1/municipalities/{ags}/practice-examples"
_NETWORK = "/v1/network/practice-examples"
_IF_MATCH = re.compile(r'^(?:W/)?"([0-9]{1,9})"$')
_HIDDEN = ("search", "created_by")


def _shown(doc: Doc) -> dict[str, Any]:
    out = public(doc)
    for name in _HIDDEN:
        out.pop(name, None)
    return out


def _etag(doc: Doc) -> str:
    return f'"{int(doc["revision"])}"'


def _revision(if_match: str | None) -> int | None:
    """Return the revision an ``If-Match`` header names (None for none or ``*``); 422 for any other shape."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _IF_MATCH.match(if_match.strip())
    if found is None:
        raise Problem(422, "Invalid If-Match", 'If-Match must be the ETag of the example, e.g. "3"')
    return int(found.group(1))


@router.post(_OWN, status_code=201, summary="Publish a practice example to the network (staff)")
async def publish_practice_example(
    ags: str, body: PracticeExampleCreate, principal: Staff, service: Service, response: Response
) -> dict[str, Any]:
    async with problems():
        doc = await service.practice_examples.publish(ags, body, author=principal.subject)
    response.headers["ETag"] = _etag(doc)
    response.headers["Location"] = f"{_NETWORK}/{doc['_id']}"
    return _shown(doc)


@router.patch(_OWN + "/{example_id}", summary="Change a practice example of the municipality (staff; If-Match)")
async def change_practice_example(
    ags: str,
    example_id: str,
    body: PracticeExampleUpdate,
    _p: Staff,
    service: Service,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    async with problems():
        doc = await service.practice_examples.change(ags, example_id, body, if_match=_revision(if_match))
    response.headers["ETag"] = _etag(doc)
    return _shown(doc)


@router.delete(_OWN + "/{example_id}", status_code=204, summary="Withdraw a practice example (staff; If-Match)")
async def withdraw_practice_example(
    ags: str,
    example_id: str,
    _p: Staff,
    service: Service,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    async with problems():
        await service.practice_examples.withdraw(ags, example_id, if_match=_revision(if_match))
    return Response(status_code=204)


@router.get(_NETWORK, summary="Search the network's practice examples (any signed-in member)")
async def search_practice_examples(
    _p: NetworkMember,
    service: Service,
    q: Annotated[str | None, Query(max_length=200, description="words that must all occur in title or text")] = None,
    field: Field_ | None = None,
    kind: MunicipalityKind | None = None,
    municipality: Annotated[str | None, Query(pattern=r"^[0-9]{8}$")] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    found = await service.practice_examples.search(
        query=q, field=field, kind=kind, municipality=municipality, offset=offset, limit=limit
    )
    return {"items": [_shown(d) for d in found.items], "total": found.total, "offset": offset, "limit": limit}


@router.get(_NETWORK + "/{example_id}", summary="Read a practice example (any signed-in member)")
async def get_practice_example(
    example_id: str, _p: NetworkMember, service: Service, response: Response
) -> dict[str, Any]:
    async with problems():
        doc = await service.practice_examples.example(example_id)
    response.headers["ETag"] = _etag(doc)
    return _shown(doc)

"""Holds what every router of the registry shares: the use cases as a dependency and the problem mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request

from engagiert.registry.services import (
    AlreadyExists,
    DuplicateMember,
    InvalidChange,
    NotFound,
    PreconditionFailed,
    PreviouslyErased,
    RegistryService,
)
from engagiert.shared.problems import Problem


def get_service(request: Request) -> RegistryService:
    """Return the service's use cases (created at start)."""
    service: RegistryService = request.app.state.registry
    return service


Service = Annotated[RegistryService, Depends(get_service)]


@asynccontextmanager
async def problems() -> AsyncIterator[None]:
    """Translate use-case errors into problem+json (404 never says whether the id exists elsewhere)."""
    try:
        yield
    except NotFound:
        raise Problem(404, "Not found", "no such resource") from None
    except PreviouslyErased:
        raise Problem(
            409,
            "Previously erased",
            "this person was erased from the register; register them again only if they asked to, "
            "with allow_previously_erased=true",
        ) from None
    except DuplicateMember as exc:
        raise Problem(
            409,
            "Duplicate member",
            "a member with the same e-mail, or the same name and date of birth, exists",
            extra={"existing_member_id": exc.existing_id},
        ) from None
    except AlreadyExists:
        raise Problem(409, "Already exists", "a resource with this key exists") from None
    except PreconditionFailed:
        raise Problem(
            412, "Precondition failed", "the resource changed since you read it; read it again and repeat the change"
        ) from None
    except InvalidChange as exc:
        raise Problem(422, "Invalid change", str(exc)) from None


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a document as the API shows it: ``_id`` as ``id``, internal fields left out."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    if "_id" in doc:
        out["id"] = doc["_id"]
    return out

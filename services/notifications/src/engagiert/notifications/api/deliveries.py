"""HTTP routes of the delivery log: list, read and resend deliveries; parse, authorise, call a use case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from engagiert.notifications.domain import DeliveryPublic, DeliveryStatus
from engagiert.notifications.services import DeliveryLog
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["notifications"])


def _service(request: Request) -> DeliveryLog:
    service: DeliveryLog = request.app.state.notifications.deliveries
    return service


Service = Annotated[DeliveryLog, Depends(_service)]


@router.get("/deliveries", summary="The delivery log, per member or per request")
async def list_deliveries(
    ags: str,
    _p: Reader,
    service: Service,
    member_id: str | None = None,
    request_id: str | None = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeliveryPublic]:
    """Return deliveries (status, reason, attempts, the server's answer), newest first."""
    docs = await service.find(ags, member_id=member_id, request_id=request_id, status=status, limit=limit, skip=offset)
    return [DeliveryPublic.from_document(d) for d in docs]


@router.get("/deliveries/{delivery_id}", summary="One delivery")
async def get_delivery(ags: str, delivery_id: str, _p: Reader, service: Service) -> DeliveryPublic:
    """Return one delivery of the log."""
    doc = await service.get(ags, delivery_id)
    if doc is None:
        raise Problem(404, "Not found", "no such delivery")
    return DeliveryPublic.from_document(doc)


@router.post("/deliveries/{delivery_id}/resend", status_code=202, summary="Send a delivery again (staff)")
async def resend(ags: str, delivery_id: str, _p: Staff, service: Service) -> DeliveryPublic:
    """Queue a new delivery for the same request; consent and status are checked again."""
    try:
        doc = await service.resend(ags, delivery_id)
    except ValueError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    if doc is None:
        raise Problem(404, "Not found", "no such delivery")
    return DeliveryPublic.from_document(doc)

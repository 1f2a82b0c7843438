"""HTTP routes: branding, template preview, delivery log and resend; parse, authorise, call a use case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from engagiert.notifications.domain import (
    BrandingPublic,
    BrandingUpdate,
    DeliveryPublic,
    DeliveryStatus,
    PreviewRequest,
    RenderedMessage,
)
from engagiert.notifications.services import NotificationService
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.contracts.notifications import TemplateName
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["notifications"])


def _service(request: Request) -> NotificationService:
    service: NotificationService = request.app.state.notifications
    return service


Service = Annotated[NotificationService, Depends(_service)]


@router.get("/branding", summary="The municipality's branding of its messages")
async def get_branding(ags: str, _p: Reader, service: Service) -> BrandingPublic:
    """Return the branding (the default until the municipality sets one)."""
    return BrandingPublic.model_validate(await service.branding_of(ags))


@router.put("/branding", summary="Set the municipality's branding: name, signature, logo URL")
async def put_branding(ags: str, body: BrandingUpdate, _p: Staff, service: Service) -> BrandingPublic:
    """Store the branding used by every message of this municipality."""
    return BrandingPublic.model_validate(await service.set_branding(ags, body))


@router.post("/templates/{name}/preview", summary="Render a template with sample data and the branding")
async def preview(ags: str, name: TemplateName, body: PreviewRequest, _p: Staff, service: Service) -> RenderedMessage:
    """Return subject, plain text and HTML of a template as a member would get it."""
    return await service.preview(ags, name, body)


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
    docs = await service.repo.list_deliveries(
        ags, member_id=member_id, request_id=request_id, status=status, limit=limit, skip=offset
    )
    return [DeliveryPublic.from_document(d) for d in docs]


@router.get("/deliveries/{delivery_id}", summary="One delivery")
async def get_delivery(ags: str, delivery_id: str, _p: Reader, service: Service) -> DeliveryPublic:
    """Return one delivery of the log."""
    doc = await service.repo.delivery(ags, delivery_id)
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

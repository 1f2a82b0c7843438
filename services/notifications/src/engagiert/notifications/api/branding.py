"""HTTP routes of templates and branding: branding settings, template preview; parse, authorise, call a use case."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response

from engagiert.notifications.domain import (
    BrandingPublic,
    BrandingUpdate,
    CertificateRequest,
    PreviewRequest,
    RenderedMessage,
)
from engagiert.notifications.services import Branding
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.contracts.notifications import TemplateName
from engagiert.shared.problems import Problem

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["notifications"])


def _service(request: Request) -> Branding:
    service: Branding = request.app.state.notifications.branding
    return service


Service = Annotated[Branding, Depends(_service)]


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


PDF = {"content": {"application/pdf": {}}, "description": "a PDF"}


@router.post(
    "/templates/{name}/letter.pdf",
    summary="Render a template as the printed letter (PDF, DIN 5008) with sample data",
    response_class=Response,
    responses={200: PDF},
)
async def preview_letter(ags: str, name: TemplateName, body: PreviewRequest, _p: Staff, service: Service) -> Response:
    """Return the letter as members without e-mail receive it by post."""
    pdf = await service.letter_preview(ags, name, body)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}.pdf"'}
    )


@router.post(
    "/certificates/{kind}.pdf",
    summary="Render a certificate: Engagementnachweis NRW or Urkunde (PDF)",
    response_class=Response,
    responses={200: PDF},
)
async def certificate(
    ags: str,
    kind: Literal["engagementnachweis", "urkunde"],
    body: CertificateRequest,
    _p: Staff,
    service: Service,
) -> Response:
    """Return the certificate with the municipality's branding (the body's defaults make an example)."""
    pdf = await service.certificate(ags, kind, body)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{kind}.pdf"'}
    )


@router.get("/letters", summary="The runs that produced printed letters (members reached only by post)")
async def letter_runs(ags: str, _p: Reader, service: Service) -> list[dict[str, Any]]:
    """Return each run with its number of letters, newest first."""
    return await service.repo.letter_runs(ags)


@router.get(
    "/letters/{run}.pdf", summary="One PDF with a run's printed letters", response_class=Response, responses={200: PDF}
)
async def letter_run(ags: str, run: str, _p: Staff, service: Service) -> Response:
    """Return the letters of a run (DIN 5008, address in the window field) to print and post."""
    pdf = await service.letter_run_pdf(ags, run)
    if pdf is None:
        raise Problem(404, "Not found", "no letters in this run")
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="briefe-{run}.pdf"'}
    )

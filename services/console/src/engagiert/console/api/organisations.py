"""Page 4, organisations: list, create, edit."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.forms import FormErrors, errors_from, text, values
from engagiert.console.rendering import flash, render
from engagiert.shared.contracts.base import Field_

router = APIRouter(prefix="/m/{ags}/organisations", tags=["organisations"])

KINDS = ("Verein", "Initiative", "Freiwilligenagentur", "Stiftung", "Kirchengemeinde", "Sonstige")
FIELDS: tuple[str, ...] = get_args(Field_)
FORM_FIELDS = {"name", "kind", "fields"}


def _body(form: FormData) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "kind": text(form, "kind") or "Verein",
        "fields": [f for f in form.getlist("fields") if isinstance(f, str) and f],
    }


def _form(
    request: Request,
    *,
    organisation: clients.Organisation | None,
    form: dict[str, Any],
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "organisations/form.html",
        {
            "organisation": organisation,
            "form": form,
            "errors": errors or FormErrors(),
            "kinds": KINDS,
            "fields": FIELDS,
        },
        status=status,
    )


@router.get("", summary="The organisations")
async def organisation_list(request: Request, tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """List the municipality's organisations."""
    organisations = sorted(await api.registry.organisations(tenant.ags), key=lambda o: o.name.casefold())
    return render(request, "organisations/list.html", {"organisations": organisations})


@router.get("/new", summary="The form for a new organisation")
async def new_organisation(request: Request, tenant: CurrentTenant, user: StaffUser) -> Response:
    """Show an empty organisation form."""
    return _form(request, organisation=None, form={"kind": "Verein", "fields": []})


@router.post("/new", summary="Create an organisation")
async def create_organisation(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Create the organisation; refusals appear next to their fields."""
    form = await request.form()
    try:
        await api.registry.create_organisation(tenant.ags, _body(form))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        return _form(
            request, organisation=None, form=values(form), errors=errors_from(exc, known=FORM_FIELDS), status=exc.status
        )
    flash(request, "organisations.created")
    return RedirectResponse(f"/m/{tenant.ags}/organisations", status_code=303)


@router.get("/{org_id}/edit", summary="The form to change an organisation")
async def edit_organisation(
    request: Request, org_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Show the organisation's form filled in."""
    organisation = await api.registry.organisation(tenant.ags, org_id)
    form = {"name": organisation.name, "kind": organisation.kind, "fields": list(organisation.fields)}
    return _form(request, organisation=organisation, form=form)


@router.post("/{org_id}/edit", summary="Change an organisation")
async def update_organisation(
    request: Request, org_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Change the organisation; refusals appear next to their fields."""
    form = await request.form()
    try:
        await api.registry.update_organisation(tenant.ags, org_id, _body(form))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        organisation = await api.registry.organisation(tenant.ags, org_id)
        return _form(
            request,
            organisation=organisation,
            form=values(form),
            errors=errors_from(exc, known=FORM_FIELDS),
            status=exc.status,
        )
    flash(request, "organisations.saved")
    return RedirectResponse(f"/m/{tenant.ags}/organisations", status_code=303)

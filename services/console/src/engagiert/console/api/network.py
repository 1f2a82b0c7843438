"""Page 8, network admin: the network's municipalities, list, create and edit (as the registry allows)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from engagiert.console import clients
from engagiert.console.deps import CurrentUser, Services
from engagiert.console.errors import PageForbidden
from engagiert.console.forms import FormErrors, errors_from, optional, text, values
from engagiert.console.oidc import User
from engagiert.console.rendering import flash, render

router = APIRouter(prefix="/network/municipalities", tags=["network"])

KINDS = ("Stadt", "Gemeinde", "Kreis", "Bezirksregierung")
FORM_FIELDS = {"ags", "name", "kind", "contact_point_name", "contact_point_email"}


def network_admin(user: CurrentUser) -> User:
    """Return the user when they manage the network; anyone else gets the 403 page (the registry refuses too)."""
    if not user.is_network_admin:
        raise PageForbidden
    return user


NetworkAdminUser = Annotated[User, Depends(network_admin)]


def _body(form: FormData, *, with_ags: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": text(form, "name"),
        "kind": text(form, "kind"),
        "contact_point_name": optional(form, "contact_point_name"),
        "contact_point_email": optional(form, "contact_point_email"),
    }
    if with_ags:
        body["ags"] = text(form, "ags")
    return body


def _form(
    request: Request,
    *,
    municipality: clients.Municipality | None,
    form: dict[str, Any],
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "network/form.html",
        {"municipality": municipality, "form": form, "errors": errors or FormErrors(), "kinds": KINDS},
        status=status,
    )


def _errors(exc: clients.ServiceError) -> FormErrors:
    if exc.status == 409:
        found = FormErrors()
        found.add("ags", "network.ags_taken")
        return found
    return errors_from(exc, known=FORM_FIELDS)


@router.get("", summary="The network's municipalities")
async def municipality_list(request: Request, user: NetworkAdminUser, api: Services) -> Response:
    """List every municipality of the network."""
    municipalities = sorted(await api.registry.municipalities(), key=lambda m: m.name.casefold())
    return render(request, "network/list.html", {"municipalities": municipalities})


@router.get("/new", summary="The form for a new municipality")
async def new_municipality(request: Request, user: NetworkAdminUser) -> Response:
    """Show an empty municipality form."""
    return _form(request, municipality=None, form={"kind": "Stadt"})


@router.post("/new", summary="Create a municipality")
async def create_municipality(request: Request, user: NetworkAdminUser, api: Services) -> Response:
    """Create the municipality; refusals appear next to their fields."""
    form = await request.form()
    try:
        await api.registry.create_municipality(_body(form, with_ags=True))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        return _form(request, municipality=None, form=values(form), errors=_errors(exc), status=exc.status)
    request.app.state.municipality_names.pop(text(form, "ags"), None)
    flash(request, "network.created")
    return RedirectResponse("/network/municipalities", status_code=303)


@router.get("/{ags}/edit", summary="The form to change a municipality")
async def edit_municipality(request: Request, ags: str, user: NetworkAdminUser, api: Services) -> Response:
    """Show the municipality's form filled in (the key cannot change)."""
    municipality = await api.registry.municipality(ags)
    form = {
        "name": municipality.name,
        "kind": municipality.kind or "",
        "contact_point_name": municipality.contact_point_name or "",
        "contact_point_email": municipality.contact_point_email or "",
    }
    return _form(request, municipality=municipality, form=form)


@router.post("/{ags}/edit", summary="Change a municipality")
async def update_municipality(request: Request, ags: str, user: NetworkAdminUser, api: Services) -> Response:
    """Change the municipality; refusals appear next to their fields."""
    form = await request.form()
    try:
        await api.registry.update_municipality(ags, _body(form, with_ags=False))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        municipality = await api.registry.municipality(ags)
        return _form(request, municipality=municipality, form=values(form), errors=_errors(exc), status=exc.status)
    # The console caches names for the header for a few minutes: a renamed municipality shows at once.
    request.app.state.municipality_names.pop(ags, None)
    flash(request, "network.saved")
    return RedirectResponse("/network/municipalities", status_code=303)

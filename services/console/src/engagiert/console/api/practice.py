"""The practice-example board of the network: search and read every municipality's; publish, edit, withdraw your own."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.errors import PageNotFound
from engagiert.console.forms import FormErrors, errors_from, optional, text, values
from engagiert.console.oidc import User
from engagiert.console.rendering import flash, render
from engagiert.shared.contracts.base import Field_
from engagiert.shared.contracts.members import MunicipalityKind

router = APIRouter(prefix="/m/{ags}/practice", tags=["practice examples"])

FIELDS: tuple[str, ...] = get_args(Field_)
KINDS: tuple[str, ...] = get_args(MunicipalityKind)
PAGE = 20
TEXTS = ("what_was_done", "what_it_took", "what_worked")
FORM_FIELDS = {"title", "field", *TEXTS, "contact.name", "contact.email", "contact.phone"}


def _body(form: FormData) -> dict[str, Any]:
    body: dict[str, Any] = {name: text(form, name) for name in ("title", "field", *TEXTS)}
    body["contact"] = {
        "name": text(form, "contact.name"),
        "email": text(form, "contact.email"),
        "phone": optional(form, "contact.phone"),
    }
    return body


def _filled(example: clients.PracticeExample) -> dict[str, Any]:
    return {
        "title": example.title,
        "field": example.field,
        **{name: getattr(example, name) for name in TEXTS},
        "contact.name": example.contact.name,
        "contact.email": example.contact.email,
        "contact.phone": example.contact.phone or "",
        "revision": str(example.revision),
    }


def _form(
    request: Request,
    *,
    example: clients.PracticeExample | None,
    form: dict[str, Any],
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "practice/form.html",
        {"example": example, "form": form, "errors": errors or FormErrors(), "fields": FIELDS},
        status=status,
    )


def _errors(exc: clients.ServiceError) -> FormErrors:
    if exc.status == 412:
        found = FormErrors()
        found.general.append("practice.changed_meanwhile")
        return found
    return errors_from(exc, known=FORM_FIELDS)


async def _own(api: clients.Services, ags: str, example_id: str, user: User) -> clients.PracticeExample:
    """Return an example of ``ags`` that the user may change; another municipality's is "not found" here."""
    example = await api.registry.practice_example(example_id)
    if example.municipality != ags or not user.may_act_for(ags):
        raise PageNotFound
    return example


@router.get("", summary="The practice-example board")
async def practice_list(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    q: str | None = Query(default=None, max_length=200),
    field: str | None = Query(default=None, max_length=60),
    kind: str | None = Query(default=None, max_length=40),
    mine: str | None = Query(default=None, max_length=3),
    offset: int = Query(default=0, ge=0, le=100_000),
) -> Response:
    """List the network's examples, newest change first, with search and filters (field, kind, own municipality)."""
    filters = {
        "q": (q or "").strip(),
        "field": field if field in FIELDS else "",
        "kind": kind if kind in KINDS else "",
        "mine": "yes" if mine == "yes" else "",
    }
    page = await api.registry.practice_examples(
        q=filters["q"] or None,
        field=filters["field"] or None,
        kind=filters["kind"] or None,
        municipality=tenant.ags if filters["mine"] else None,
        offset=offset,
        limit=PAGE,
    )
    context = {
        "page": page,
        "filters": filters,
        "fields": FIELDS,
        "kinds": KINDS,
        "offset": offset,
        "page_size": PAGE,
        "searched": any(filters.values()),
    }
    return render(request, "practice/list.html", context)


@router.get("/new", summary="The form for a new practice example")
async def new_example(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Show an empty form; the contact starts as the signed-in person at the contact point's e-mail."""
    municipality = await api.registry.municipality(tenant.ags)
    form = {"contact.name": user.name, "contact.email": municipality.contact_point_email or ""}
    return _form(request, example=None, form=form)


@router.post("/new", summary="Publish a practice example")
async def create_example(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Publish the example to the network; refusals appear next to their fields."""
    form = await request.form()
    try:
        example = await api.registry.publish_practice_example(tenant.ags, _body(form))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        return _form(request, example=None, form=values(form), errors=_errors(exc), status=exc.status)
    flash(request, "practice.published")
    return RedirectResponse(f"/m/{tenant.ags}/practice/{example.id}", status_code=303)


@router.get("/{example_id}", summary="A practice example")
async def example_detail(
    request: Request, example_id: str, tenant: CurrentTenant, user: CurrentUser, api: Services
) -> Response:
    """Show a practice example of any municipality; your own municipality's with edit and withdraw."""
    example = await api.registry.practice_example(example_id)
    own = example.municipality == tenant.ags and user.can_write
    return render(request, "practice/detail.html", {"example": example, "own": own})


@router.get("/{example_id}/edit", summary="The form to change a practice example")
async def edit_example(
    request: Request, example_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Show the example's form filled in, with the revision it was read at."""
    example = await _own(api, tenant.ags, example_id, user)
    return _form(request, example=example, form=_filled(example))


def _revision(form: FormData) -> int:
    raw = text(form, "revision")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


@router.post("/{example_id}/edit", summary="Change a practice example")
async def update_example(
    request: Request, example_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Change the example if nobody changed it since the form was read (else say so)."""
    example = await _own(api, tenant.ags, example_id, user)
    form = await request.form()
    try:
        await api.registry.change_practice_example(tenant.ags, example_id, _body(form), revision=_revision(form))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        return _form(request, example=example, form=values(form), errors=_errors(exc), status=exc.status)
    flash(request, "practice.saved")
    return RedirectResponse(f"/m/{tenant.ags}/practice/{example_id}", status_code=303)


@router.get("/{example_id}/withdraw", summary="Confirm withdrawing a practice example")
async def confirm_withdraw(
    request: Request, example_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Ask before the example leaves the network."""
    example = await _own(api, tenant.ags, example_id, user)
    return render(request, "practice/withdraw.html", {"example": example, "errors": FormErrors()})


@router.post("/{example_id}/withdraw", summary="Withdraw a practice example")
async def withdraw_example(
    request: Request, example_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Withdraw the example: the network no longer sees it."""
    example = await _own(api, tenant.ags, example_id, user)
    form = await request.form()
    try:
        await api.registry.withdraw_practice_example(tenant.ags, example_id, revision=_revision(form))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        return render(
            request, "practice/withdraw.html", {"example": example, "errors": _errors(exc)}, status=exc.status
        )
    flash(request, "practice.withdrawn")
    return RedirectResponse(f"/m/{tenant.ags}/practice", status_code=303)

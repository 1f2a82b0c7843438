"""Page 2, members: search and filters, the member page, create and edit, hours, status, consent, erasure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.forms import FormErrors, errors_from, optional, text, values
from engagiert.console.rendering import flash, render
from engagiert.shared.contracts.base import Channel, Field_, MemberStatus

router = APIRouter(prefix="/m/{ags}/members", tags=["members"])

FIELDS: tuple[str, ...] = get_args(Field_)
STATUSES: tuple[str, ...] = get_args(MemberStatus)
CHANNELS: tuple[str, ...] = get_args(Channel)
SORTS = ("name", "hours", "years")
PAGE_SIZE = 50

MEMBER_FORM_FIELDS = {
    "given_name",
    "family_name",
    "date_of_birth",
    "language",
    "contact.email",
    "contact.phone",
    "contact.postal_address.street",
    "contact.postal_address.postal_code",
    "contact.postal_address.city",
    "contact.postal_address",
    "consent.channels",
    "engagements.0.organisation_id",
    "engagements.0.field",
    "engagements.0.role",
    "engagements.0.since",
    "engagements.0.until",
}
HOURS_FORM_FIELDS = {"hours", "date_from", "date_to", "organisation_id"}


# -- the list ------------------------------------------------------------------------------------------


def _sorted(items: list[clients.Member], sort: str | None) -> list[clients.Member]:
    if sort == "hours":
        return sorted(items, key=lambda m: -m.totals.hours_last_12_months)
    if sort == "years":
        return sorted(items, key=lambda m: -m.totals.years_of_engagement)
    if sort == "name":
        return sorted(items, key=lambda m: (m.family_name.casefold(), m.given_name.casefold()))
    return items


@router.get("", summary="Search and filter members")
async def member_list(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    q: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    organisation_id: Annotated[str | None, Query(max_length=64)] = None,
    field: Annotated[str | None, Query(max_length=60)] = None,
    min_hours: Annotated[str | None, Query(max_length=10)] = None,
    min_years: Annotated[str | None, Query(max_length=10)] = None,
    honours: Annotated[str | None, Query(max_length=10)] = None,
    sort: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Show a page of members; the registry filters by name, status, organisation and field, the console the rest."""
    status_ = status if status in STATUSES else None
    field_ = field if field in FIELDS else None
    hours_min = _number(min_hours)
    years_min = _number(min_years)
    page, organisations, holders = await asyncio.gather(
        api.registry.members(
            tenant.ags,
            status=status_,  # type: ignore[arg-type]
            organisation_id=organisation_id or None,
            field=field_,
            name=q or None,
            cursor=cursor or None,
            limit=PAGE_SIZE,
        ),
        api.registry.organisations(tenant.ags),
        _honour_holders(api, tenant.ags) if honours == "yes" else _none(),
    )
    items = [
        m
        for m in page.items
        if (hours_min is None or m.totals.hours_last_12_months >= hours_min)
        and (years_min is None or m.totals.years_of_engagement >= years_min)
        and (holders is None or m.member_id in holders)
    ]
    params = {
        "q": q or "",
        "status": status_ or "",
        "organisation_id": organisation_id or "",
        "field": field_ or "",
        "min_hours": min_hours or "",
        "min_years": min_years or "",
        "honours": "yes" if honours == "yes" else "",
        "sort": sort if sort in SORTS else "",
    }
    return render(
        request,
        "members/list.html",
        {
            "members": _sorted(items, sort),
            "examined": len(page.items),
            "next_cursor": page.next_cursor,
            "params": params,
            "organisations": organisations,
            "fields": FIELDS,
            "statuses": STATUSES,
            "sorts": SORTS,
            "first_page": not cursor,
        },
    )


async def _none() -> None:
    return None


async def _honour_holders(api: clients.Services, ags: str) -> set[str]:
    return {h.member_id for h in await api.events.honours(ags, status="granted")}


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return None


# -- create and edit -----------------------------------------------------------------------------------


def _member_body(form: FormData, *, for_update: bool = False) -> dict[str, Any]:
    """Return the registry's member body from the form (dotted names as the registry's fields)."""
    contact: dict[str, Any] = {"email": optional(form, "contact.email"), "phone": optional(form, "contact.phone")}
    street, postal_code, city = (
        text(form, "contact.postal_address.street"),
        text(form, "contact.postal_address.postal_code"),
        text(form, "contact.postal_address.city"),
    )
    if street or postal_code or city:
        contact["postal_address"] = {"street": street, "postal_code": postal_code, "city": city}
    else:
        contact["postal_address"] = None
    body: dict[str, Any] = {
        "given_name": text(form, "given_name"),
        "family_name": text(form, "family_name"),
        "date_of_birth": optional(form, "date_of_birth"),
        "language": text(form, "language") or "de",
        "contact": contact,
    }
    channels = [c for c in form.getlist("consent.channels") if isinstance(c, str) and c]
    if channels or not for_update:
        body["consent"] = {"channels": channels, "source": "Konsole"} if channels else None
    engagements = _engagements(form)
    if engagements or not for_update:
        body["engagements"] = engagements
    return body


def _engagements(form: FormData) -> list[dict[str, Any]]:
    """Return the engagement rows of the form (``engagements.N.*``); empty new rows are left out."""
    rows: list[dict[str, Any]] = []
    for n in range(0, 100):
        prefix = f"engagements.{n}."
        if not any(k.startswith(prefix) for k in form):
            break
        row = {
            "engagement_id": optional(form, prefix + "engagement_id"),
            "organisation_id": optional(form, prefix + "organisation_id"),
            "field": optional(form, prefix + "field"),
            "role": optional(form, prefix + "role"),
            "since": optional(form, prefix + "since"),
            "until": optional(form, prefix + "until"),
        }
        if row["engagement_id"] is None and not (row["field"] or row["since"] or row["role"]):
            continue
        rows.append({k: v for k, v in row.items() if v is not None or k == "until"})
    return rows


def _form_values(member: clients.Member) -> dict[str, Any]:
    address = member.contact.postal_address
    out: dict[str, Any] = {
        "given_name": member.given_name,
        "family_name": member.family_name,
        "date_of_birth": member.date_of_birth.isoformat() if member.date_of_birth else "",
        "language": member.language,
        "contact.email": member.contact.email or "",
        "contact.phone": member.contact.phone or "",
        "contact.postal_address.street": address.street if address else "",
        "contact.postal_address.postal_code": address.postal_code if address else "",
        "contact.postal_address.city": address.city if address else "",
        "consent.channels": list(member.consent.channels),
    }
    for n, e in enumerate(member.engagements):
        out[f"engagements.{n}.engagement_id"] = e.engagement_id
        out[f"engagements.{n}.organisation_id"] = e.organisation_id or ""
        out[f"engagements.{n}.field"] = e.field
        out[f"engagements.{n}.role"] = e.role or ""
        out[f"engagements.{n}.since"] = e.since.isoformat()
        out[f"engagements.{n}.until"] = e.until.isoformat() if e.until else ""
    return out


async def _form_page(
    request: Request,
    api: clients.Services,
    ags: str,
    *,
    member: clients.Member | None,
    form: dict[str, Any],
    errors: FormErrors | None = None,
    duplicate_of: str | None = None,
    status: int = 200,
) -> Response:
    existing = len(member.engagements) if member else 0
    return render(
        request,
        "members/form.html",
        {
            "member": member,
            "form": form,
            "errors": errors or FormErrors(),
            "duplicate_of": duplicate_of,
            "organisations": await api.registry.organisations(ags),
            "fields": FIELDS,
            "channels": CHANNELS,
            "engagement_rows": range(existing + 1),
            "new_row": existing,
        },
        status=status,
    )


@router.get("/new", summary="The form for a new member")
async def new_member(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Show an empty member form."""
    return await _form_page(request, api, tenant.ags, member=None, form={"language": "de"})


@router.post("/new", summary="Register a member")
async def create_member(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Register the member; a duplicate is offered as a choice, refusals appear next to their fields."""
    form = await request.form()
    try:
        member = await api.registry.register(tenant.ags, _member_body(form))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        duplicate = exc.problem.get("existing_member_id") if exc.status == 409 else None
        return await _form_page(
            request,
            api,
            tenant.ags,
            member=None,
            form=values(form),
            errors=errors_from(exc, known=MEMBER_FORM_FIELDS),
            duplicate_of=str(duplicate) if duplicate else None,
            status=exc.status,
        )
    flash(request, "members.created")
    return RedirectResponse(f"/m/{tenant.ags}/members/{member.member_id}", status_code=303)


@router.get("/{member_id}/edit", summary="The form to change a member")
async def edit_member(
    request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Show the member's form filled in."""
    member = await api.registry.member(tenant.ags, member_id)
    return await _form_page(request, api, tenant.ags, member=member, form=_form_values(member))


@router.post("/{member_id}/edit", summary="Change a member")
async def update_member(
    request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Change the member; refusals appear next to their fields."""
    form = await request.form()
    try:
        await api.registry.update(tenant.ags, member_id, _member_body(form, for_update=True))
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        member = await api.registry.member(tenant.ags, member_id)
        known = MEMBER_FORM_FIELDS | {f"engagements.{n}.{k}" for n in range(100) for k in ("field", "since", "until")}
        return await _form_page(
            request,
            api,
            tenant.ags,
            member=member,
            form=values(form),
            errors=errors_from(exc, known=known),
            status=exc.status,
        )
    flash(request, "members.saved")
    return RedirectResponse(f"/m/{tenant.ags}/members/{member_id}", status_code=303)


# -- the member page -----------------------------------------------------------------------------------


async def _invitations_of(api: clients.Services, ags: str, member_id: str) -> list[dict[str, Any]]:
    """Return the member's invitations across the municipality's events (the events service lists per event)."""
    events = await api.events.events(ags)
    lists = await asyncio.gather(*(api.events.invitations(ags, e.id) for e in events))
    found: list[dict[str, Any]] = []
    for event, invitations in zip(events, lists, strict=True):
        found.extend({"event": event, "invitation": i} for i in invitations if i.member_id == member_id)
    return sorted(found, key=lambda f: f["event"].starts_at, reverse=True)


async def _member_page(
    request: Request,
    api: clients.Services,
    ags: str,
    member_id: str,
    *,
    hours_form: dict[str, Any] | None = None,
    hours_errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    member = await api.registry.member(ags, member_id)
    honours, deliveries, invitations, organisations = await asyncio.gather(
        api.events.honours(ags),
        api.notifications.deliveries(ags, member_id=member_id, limit=50),
        _invitations_of(api, ags, member_id),
        api.registry.organisations(ags),
    )
    return render(
        request,
        "members/detail.html",
        {
            "member": member,
            "honours": [h for h in honours if h.member_id == member_id],
            "deliveries": deliveries,
            "invitations": invitations,
            "organisations": {o.id: o.name for o in organisations},
            "organisation_list": organisations,
            "statuses": STATUSES,
            "hours_form": hours_form or {"date_from": datetime.now(UTC).date().isoformat()},
            "hours_errors": hours_errors or FormErrors(),
        },
        status=status,
    )


@router.get("/{member_id}", summary="The member page")
async def member_page(
    request: Request, member_id: str, tenant: CurrentTenant, user: CurrentUser, api: Services
) -> Response:
    """Show contact, consent, engagements, hours, figures, honours, invitations and the delivery log."""
    return await _member_page(request, api, tenant.ags, member_id)


@router.post("/{member_id}/hours", summary="Record hours")
async def record_hours(
    request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Record hours; refusals appear next to their fields on the member page."""
    form = await request.form()
    body = {
        "hours": text(form, "hours").replace(",", "."),
        "date_from": text(form, "date_from"),
        "date_to": optional(form, "date_to"),
        "organisation_id": optional(form, "organisation_id"),
    }
    try:
        await api.registry.record_hours(tenant.ags, member_id, body)
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        return await _member_page(
            request,
            api,
            tenant.ags,
            member_id,
            hours_form=values(form),
            hours_errors=errors_from(exc, known=HOURS_FORM_FIELDS),
            status=exc.status,
        )
    flash(request, "members.hours_recorded", hours=body["hours"])
    return RedirectResponse(f"/m/{tenant.ags}/members/{member_id}#hours", status_code=303)


@router.post("/{member_id}/status", summary="Change the status")
async def change_status(
    request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Change the member's status (active, paused, left)."""
    form = await request.form()
    await api.registry.change_status(tenant.ags, member_id, text(form, "status"))
    flash(request, "members.status_changed")
    return RedirectResponse(f"/m/{tenant.ags}/members/{member_id}", status_code=303)


@router.post("/{member_id}/consent/withdraw", summary="Withdraw consent")
async def withdraw_consent(
    request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Withdraw the member's consent: no more letters or e-mails."""
    await api.registry.withdraw_consent(tenant.ags, member_id)
    flash(request, "members.consent_withdrawn")
    return RedirectResponse(f"/m/{tenant.ags}/members/{member_id}#consent", status_code=303)


# -- erasure -------------------------------------------------------------------------------------------


@router.get("/{member_id}/erase", summary="Confirm an erasure")
async def confirm_erasure(
    request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Ask before erasing: what goes, that it cannot be undone."""
    member = await api.registry.member(tenant.ags, member_id)
    return render(request, "members/erase.html", {"member": member})


@router.post("/{member_id}/erase", summary="Erase a member")
async def erase(request: Request, member_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Erase the member (DSGVO Art. 17), then show the services' confirmations as they arrive."""
    await api.registry.erase(tenant.ags, member_id)
    return RedirectResponse(f"/m/{tenant.ags}/members/{member_id}/erasure", status_code=303)


@router.get("/{member_id}/erasure", summary="The erasure's confirmations")
async def erasure(
    request: Request,
    member_id: str,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    fragment: bool = False,
) -> Response:
    """Show which services confirmed; htmx reloads the list every two seconds until all did."""
    status = await api.registry.erasure_status(tenant.ags, member_id)
    template = "members/_erasure_status.html" if fragment else "members/erasure.html"
    return render(request, template, {"erasure": status, "member_id": member_id})

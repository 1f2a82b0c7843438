"""Page 6, honours: the proposals inbox, grant or reject, granted cards with expiry, renewals, the honour rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.forms import FormErrors, errors_from, optional, text, values
from engagiert.console.people import member_names
from engagiert.console.rendering import flash, render

router = APIRouter(prefix="/m/{ags}/honours", tags=["honours"])

STATUSES = ("proposed", "granted", "rejected", "expired")
EXPIRING_DAYS = 90
"""A granted card whose last day is this close is marked as expiring."""


def _refused(exc: clients.ServiceError) -> None:
    if isinstance(exc, clients.NotFound | clients.Forbidden):
        raise exc


@router.get("", summary="The proposals inbox, granted, rejected and expired honours")
async def honour_list(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Show one tab: proposals (new ones and renewals, with why the member is eligible), or decided honours."""
    status_ = status if status in STATUSES else "proposed"
    honours = await api.events.honours(tenant.ags, status=status_)
    names = await member_names(api, tenant.ags, (h.member_id for h in honours))
    today = datetime.now(UTC).date()
    if status_ == "granted":
        honours.sort(key=lambda h: (h.valid_until is None, h.valid_until or date.max))
    else:
        honours.sort(key=lambda h: h.proposed_at or datetime.min.replace(tzinfo=UTC))
    return render(
        request,
        "honours/list.html",
        {
            "status": status_,
            "statuses": STATUSES,
            "new": [h for h in honours if not h.renewal_of],
            "renewals": [h for h in honours if h.renewal_of],
            "honours": honours,
            "names": names,
            "expiring_before": today + timedelta(days=EXPIRING_DAYS),
        },
    )


@router.get("/rules", summary="The municipality's honour rules beside the state defaults")
async def rules(request: Request, tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """Show the rules in force with the state's defaults and the dated state thresholds."""
    today = datetime.now(UTC).date()
    state = await api.events.honour_rule_defaults()
    thresholds = state.state_thresholds
    current = next((t for t in thresholds if t.applies_on(today)), thresholds[-1])
    return render(
        request,
        "honours/rules.html",
        {
            "rules": await api.events.honour_rules(tenant.ags),
            "defaults": state.defaults,
            "thresholds": thresholds,
            "current": current,
            "today": today,
        },
    )


async def _find(api: clients.Services, ags: str, honour_id: str) -> clients.Honour:
    for honour in await api.events.honours(ags):
        if honour.id == honour_id:
            return honour
    raise clients.NotFound("events", 404, {"title": "Not found"})


async def _decide_page(
    request: Request,
    api: clients.Services,
    ags: str,
    honour: clients.Honour,
    *,
    form: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    reject_errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    names = await member_names(api, ags, [honour.member_id])
    return render(
        request,
        "honours/decide.html",
        {
            "honour": honour,
            "name": names.get(honour.member_id),
            "form": form or {},
            "errors": errors or FormErrors(),
            "reject_errors": reject_errors or FormErrors(),
        },
        status=status,
    )


@router.get("/{honour_id}", summary="Decide a proposal")
async def decide(request: Request, honour_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Show the proposal with the reason, and the forms to grant (card number, validity) or reject (reason)."""
    honour = await _find(api, tenant.ags, honour_id)
    return await _decide_page(request, api, tenant.ags, honour)


@router.post("/{honour_id}/grant", summary="Grant a proposed honour")
async def grant(request: Request, honour_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Grant with a card number (or one the service makes) and a start of validity (or today)."""
    form = await request.form()
    body = {"card_number": optional(form, "card_number"), "valid_from": optional(form, "valid_from")}
    try:
        honour = await api.events.grant_honour(tenant.ags, honour_id, body)
    except clients.ServiceError as exc:
        _refused(exc)
        current = await _find(api, tenant.ags, honour_id)
        errors = (
            FormErrors(general=["honours.already_decided"])
            if exc.status == 409
            else errors_from(exc, known={"card_number", "valid_from"})
        )
        return await _decide_page(
            request, api, tenant.ags, current, form=values(form), errors=errors, status=exc.status
        )
    flash(request, "honours.granted", card=honour.card_number or "–")
    return RedirectResponse(f"/m/{tenant.ags}/honours?status=proposed", status_code=303)


@router.post("/{honour_id}/reject", summary="Reject a proposed honour")
async def reject(request: Request, honour_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Reject with a reason (required)."""
    form = await request.form()
    try:
        await api.events.reject_honour(tenant.ags, honour_id, reason=text(form, "reason"))
    except clients.ServiceError as exc:
        _refused(exc)
        current = await _find(api, tenant.ags, honour_id)
        errors = (
            FormErrors(general=["honours.already_decided"]) if exc.status == 409 else errors_from(exc, known={"reason"})
        )
        return await _decide_page(
            request, api, tenant.ags, current, form=values(form), reject_errors=errors, status=exc.status
        )
    flash(request, "honours.rejected")
    return RedirectResponse(f"/m/{tenant.ags}/honours?status=proposed", status_code=303)

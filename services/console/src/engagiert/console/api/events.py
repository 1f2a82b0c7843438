"""Page 5, events: upcoming and past, create and edit, invitations by criteria, check-in, the venue list, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, QueryParams

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.forms import FormErrors, errors_from, text, values
from engagiert.console.people import member_names
from engagiert.console.rendering import TZ, flash, render
from engagiert.shared.contracts.base import Field_
from engagiert.shared.contracts.recognition import HonourKind, RecognitionKind

router = APIRouter(prefix="/m/{ags}/events", tags=["events"])

KINDS: tuple[str, ...] = get_args(RecognitionKind)
FIELDS: tuple[str, ...] = get_args(Field_)
HONOUR_KINDS: tuple[str, ...] = get_args(HonourKind)
STATUSES = ("invited", "accepted", "waitlisted", "declined")
EVENT_FORM_FIELDS = {"kind", "title", "starts_at", "venue", "capacity", "guests_per_invitee", "rsvp_deadline", "status"}
CRITERIA_FIELDS = {"min_hours_last_12_months", "min_years", "fields", "organisations", "honour_kinds", "include_paused"}
INVITATIONS_PER_PAGE = 100
CHECKIN_LIST_ALL_UP_TO = 60
"""The check-in page lists every accepted invitee up to this many; beyond, staff search by name."""
OPEN = ("draft", "scheduled")


def _refused(exc: clients.ServiceError) -> None:
    """Re-raise what no form handles: not found and not allowed have pages of their own."""
    if isinstance(exc, clients.NotFound | clients.Forbidden):
        raise exc


# -- upcoming and past --------------------------------------------------------------------------------


@router.get("", summary="Upcoming and past events")
async def event_list(request: Request, tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """List upcoming events (with their RSVP counts) and past or closed ones."""
    now = datetime.now(UTC)
    events = await api.events.events(tenant.ags)
    upcoming = sorted((e for e in events if e.starts_at >= now and e.status in OPEN), key=lambda e: e.starts_at)
    past = sorted((e for e in events if not (e.starts_at >= now and e.status in OPEN)), key=lambda e: e.starts_at)
    upcoming = list(await asyncio.gather(*(api.events.event(tenant.ags, e.id) for e in upcoming[:20]))) + upcoming[20:]
    return render(request, "events/list.html", {"upcoming": upcoming, "past": past[::-1]})


# -- create and edit ----------------------------------------------------------------------------------


def _local_input(value: datetime) -> str:
    """Return a time as a ``datetime-local`` input shows it (Berlin time)."""
    return value.astimezone(TZ).strftime("%Y-%m-%dT%H:%M")


def _aware(value: str) -> str:
    """Return a ``datetime-local`` value as ISO time in Berlin; anything else unchanged (the service names it)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=TZ)).isoformat()


def _whole(value: str) -> int | str:
    """Return a whole number from a form, or the text (the service refuses it at its field)."""
    try:
        return int(value)
    except ValueError:
        return value


def _event_body(form: FormData) -> dict[str, Any]:
    return {
        "kind": text(form, "kind"),
        "title": text(form, "title"),
        "starts_at": _aware(text(form, "starts_at")),
        "venue": text(form, "venue"),
        "capacity": _whole(text(form, "capacity")),
        "guests_per_invitee": _whole(text(form, "guests_per_invitee") or "0"),
        "rsvp_deadline": _aware(text(form, "rsvp_deadline")),
    }


def _changes(body: dict[str, Any], event: clients.RecognitionEvent) -> dict[str, Any]:
    """Return the fields of ``body`` that differ from ``event`` (kind cannot change)."""
    current: dict[str, Any] = {
        "title": event.title,
        "starts_at": event.starts_at.isoformat(),
        "venue": event.venue,
        "capacity": event.capacity,
        "guests_per_invitee": event.guests_per_invitee,
        "rsvp_deadline": event.rsvp_deadline.isoformat(),
    }
    changed: dict[str, Any] = {}
    for key, old in current.items():
        new = body[key]
        if key in ("starts_at", "rsvp_deadline"):
            try:
                if datetime.fromisoformat(new) == datetime.fromisoformat(old):
                    continue
            except ValueError:
                pass
        elif new == old:
            continue
        changed[key] = new
    return changed


def _event_errors(exc: clients.ServiceError) -> FormErrors:
    """Return the refusal as field errors; the deadline-after-start rule lands on the deadline."""
    mentions_deadline = "rsvp_deadline must not be after starts_at" in (
        str(exc.problem.get("detail", "")) + " ".join(str(e.get("msg", "")) for e in exc.field_errors)
    )
    if mentions_deadline:
        found = FormErrors()
        found.add("rsvp_deadline", "events.deadline_after_start")
        return found
    if exc.status == 409:
        found = FormErrors()
        found.general.append("events.conflict_" + ("seats" if "seats" in str(exc.problem.get("detail")) else "state"))
        return found
    return errors_from(exc, known=EVENT_FORM_FIELDS)


def _event_form(
    request: Request,
    *,
    event: clients.RecognitionEvent | None,
    form: dict[str, Any],
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "events/form.html",
        {"event": event, "form": form, "errors": errors or FormErrors(), "kinds": KINDS},
        status=status,
    )


@router.get("/new", summary="The form for a new event")
async def new_event(request: Request, tenant: CurrentTenant, user: StaffUser) -> Response:
    """Show an empty event form."""
    return _event_form(request, event=None, form={"kind": "Feierstunde", "guests_per_invitee": "0", "status": "draft"})


@router.post("/new", summary="Create an event")
async def create_event(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Create the event; refusals appear next to their fields."""
    form = await request.form()
    body = _event_body(form)
    body["status"] = "scheduled" if text(form, "status") == "scheduled" else "draft"
    try:
        event = await api.events.create_event(tenant.ags, body)
    except clients.ServiceError as exc:
        _refused(exc)
        return _event_form(request, event=None, form=values(form), errors=_event_errors(exc), status=exc.status)
    flash(request, "events.created")
    return RedirectResponse(f"/m/{tenant.ags}/events/{event.id}", status_code=303)


@router.get("/{event_id}/edit", summary="The form to change an event")
async def edit_event(
    request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Show the event's form filled in."""
    event = await api.events.event(tenant.ags, event_id)
    form = {
        "kind": event.kind,
        "title": event.title,
        "starts_at": _local_input(event.starts_at),
        "venue": event.venue,
        "capacity": str(event.capacity),
        "guests_per_invitee": str(event.guests_per_invitee),
        "rsvp_deadline": _local_input(event.rsvp_deadline),
    }
    return _event_form(request, event=event, form=form)


@router.post("/{event_id}/edit", summary="Change an event")
async def update_event(
    request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Send the changed fields; refusals appear next to their fields."""
    form = await request.form()
    event = await api.events.event(tenant.ags, event_id)
    changes = _changes(_event_body(form), event)
    if changes:
        try:
            await api.events.update_event(tenant.ags, event_id, changes)
        except clients.ServiceError as exc:
            _refused(exc)
            return _event_form(request, event=event, form=values(form), errors=_event_errors(exc), status=exc.status)
    flash(request, "events.saved")
    return RedirectResponse(f"/m/{tenant.ags}/events/{event_id}", status_code=303)


# -- one event: figures, invitations, status --------------------------------------------------------


def _waitlist_ranks(invitations: list[clients.Invitation]) -> dict[str, int]:
    """Return each waitlisted invitation's place in the queue (1 = next to get a seat)."""
    waiting = sorted(
        (i for i in invitations if i.status == "waitlisted"), key=lambda i: (i.waitlist_position or i.seq, i.seq)
    )
    return {i.id: n for n, i in enumerate(waiting, start=1)}


@router.get("/{event_id}", summary="An event with its invitations")
async def event_page(
    request: Request,
    event_id: str,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    status: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Show the event, its seats and invitation counts, and its invitations with status, guests and waitlist place."""
    event, invitations = await asyncio.gather(
        api.events.event(tenant.ags, event_id), api.events.invitations(tenant.ags, event_id)
    )
    ranks = _waitlist_ranks(invitations)
    status_ = status if status in STATUSES else None
    shown = [i for i in invitations if status_ is None or i.status == status_]
    if status_ == "waitlisted":
        shown.sort(key=lambda i: ranks.get(i.id, 0))
    pages = max(1, -(-len(shown) // INVITATIONS_PER_PAGE))
    page = min(page, pages)
    shown = shown[(page - 1) * INVITATIONS_PER_PAGE : page * INVITATIONS_PER_PAGE]
    names = await member_names(api, tenant.ags, (i.member_id for i in shown))
    return render(
        request,
        "events/detail.html",
        {
            "event": event,
            "invitations": shown,
            "total": len(invitations),
            "names": names,
            "ranks": ranks,
            "status_filter": status_ or "",
            "statuses": STATUSES,
            "page": page,
            "pages": pages,
            "guests": sum(i.guests for i in invitations if i.status == "accepted"),
            "checked_in": sum(1 for i in invitations if i.attended),
        },
    )


@router.post("/{event_id}/status", summary="Schedule or complete an event")
async def change_status(
    request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Move a draft to scheduled (it becomes public to invitees) or a held event to completed."""
    form = await request.form()
    target = text(form, "status")
    if target not in ("scheduled", "completed"):
        target = "invalid"
    try:
        await api.events.update_event(tenant.ags, event_id, {"status": target})
    except clients.ServiceError as exc:
        _refused(exc)
        flash(request, "events.status_refused")
    else:
        flash(request, "events.status_now_" + target)
    return RedirectResponse(f"/m/{tenant.ags}/events/{event_id}", status_code=303)


@router.get("/{event_id}/cancel", summary="Confirm a cancellation")
async def confirm_cancel(
    request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Ask before cancelling: say how many invitees are written to, ask for a reason."""
    event = await api.events.event(tenant.ags, event_id)
    return render(request, "events/cancel.html", {"event": event, "form": {}, "errors": FormErrors()})


@router.post("/{event_id}/cancel", summary="Cancel an event")
async def cancel_event(
    request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Cancel the event; the events service writes to every invitee."""
    form = await request.form()
    try:
        await api.events.update_event(
            tenant.ags, event_id, {"status": "cancelled", "reason": text(form, "reason") or None}
        )
    except clients.ServiceError as exc:
        _refused(exc)
        event = await api.events.event(tenant.ags, event_id)
        errors = (
            errors_from(exc, known={"reason"}) if exc.status == 422 else FormErrors(general=["events.conflict_state"])
        )
        return render(
            request, "events/cancel.html", {"event": event, "form": values(form), "errors": errors}, status=exc.status
        )
    flash(request, "events.cancelled")
    return RedirectResponse(f"/m/{tenant.ags}/events/{event_id}", status_code=303)


@router.get("/{event_id}/venue.csv", summary="The list for the venue (CSV)")
async def venue_csv(request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Return the accepted invitees with guests and check-in, as the events service writes it (UTF-8)."""
    content = await api.events.venue_csv(tenant.ags, event_id)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="teilnehmende-{event_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


# -- invitations by criteria --------------------------------------------------------------------------


def _number(value: str) -> float | str:
    """Return a number typed the German or the English way, or the text (the service refuses it at its field)."""
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return value


def _criteria(params: QueryParams | FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (the API's criteria, the form's values) from a query string or a form."""
    chosen = {
        name: [v for v in params.getlist(name) if isinstance(v, str) and v]
        for name in ("fields", "organisations", "honour_kinds")
    }
    hours = str(params.get("min_hours_last_12_months") or "").strip()
    years = str(params.get("min_years") or "").strip()
    paused = params.get("include_paused") == "yes"
    criteria: dict[str, Any] = {**chosen, "include_paused": paused}
    if hours:
        criteria["min_hours_last_12_months"] = _number(hours)
    if years:
        criteria["min_years"] = _number(years)
    form = {
        **chosen,
        "min_hours_last_12_months": hours,
        "min_years": years,
        "include_paused": ["yes"] if paused else [],
    }
    return criteria, form


def _has_filters(criteria: dict[str, Any]) -> bool:
    return any(criteria.get(k) not in (None, [], "") for k in CRITERIA_FIELDS - {"include_paused"})


def _criteria_query(form: dict[str, Any]) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in form.items():
        for item in value if isinstance(value, list) else [value]:
            if item not in (None, ""):
                pairs.append((key, str(item)))
    return urlencode(pairs)


async def _preview(
    api: clients.Services, ags: str, event_id: str, criteria: dict[str, Any]
) -> tuple[clients.InvitationPreview | None, FormErrors]:
    """Return the service's preview of ``criteria``, or its refusal as field errors."""
    if not _has_filters(criteria):
        return None, FormErrors()
    try:
        return await api.events.preview_invitations(ags, event_id, criteria), FormErrors()
    except clients.ServiceError as exc:
        _refused(exc)
        return None, errors_from(exc, known=CRITERIA_FIELDS)


@router.get("/{event_id}/invite", summary="Invitation criteria with a live count")
async def invite(request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Show the criteria form and, once a criterion is set, how many members match and who."""
    criteria, form = _criteria(request.query_params)
    event, organisations, (preview, errors) = await asyncio.gather(
        api.events.event(tenant.ags, event_id),
        api.registry.organisations(tenant.ags),
        _preview(api, tenant.ags, event_id, criteria),
    )
    context = {
        "event": event,
        "form": form,
        "errors": errors,
        "preview": preview,
        "asked": _has_filters(criteria),
        "query": _criteria_query(form),
        "fields": FIELDS,
        "honour_kinds": HONOUR_KINDS,
        "organisations": sorted(organisations, key=lambda o: o.name.casefold()),
    }
    fragment = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "preview"
    return render(request, "events/_preview.html" if fragment else "events/invite.html", context)


@router.get("/{event_id}/invite/confirm", summary="Confirm issuing invitations")
async def confirm_issue(
    request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """State how many members get an invitation and how many wait, then ask."""
    criteria, form = _criteria(request.query_params)
    event = await api.events.event(tenant.ags, event_id)
    preview, errors = await _preview(api, tenant.ags, event_id, criteria)
    if preview is None:
        return RedirectResponse(f"/m/{tenant.ags}/events/{event_id}/invite?{_criteria_query(form)}", status_code=303)
    return render(
        request,
        "events/confirm_issue.html",
        {"event": event, "form": form, "preview": preview, "errors": errors, "query": _criteria_query(form)},
    )


@router.post("/{event_id}/invite", summary="Issue invitations")
async def issue(request: Request, event_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Issue the invitations (once per member; offers up to the capacity, the rest wait)."""
    criteria, form = _criteria(await request.form())
    try:
        result = await api.events.issue_invitations(tenant.ags, event_id, criteria)
    except clients.ServiceError as exc:
        _refused(exc)
        event = await api.events.event(tenant.ags, event_id)
        preview, _ = await _preview(api, tenant.ags, event_id, criteria)
        key = "events.issue_refused_" + ("deadline" if "deadline" in str(exc.problem.get("detail")) else "state")
        errors = FormErrors(general=[key]) if exc.status == 409 else errors_from(exc, known=CRITERIA_FIELDS)
        context = {"event": event, "form": form, "preview": preview, "errors": errors, "query": _criteria_query(form)}
        return render(request, "events/confirm_issue.html", context, status=exc.status)
    flash(request, "events.issued", invited=result.invited, waitlisted=result.waitlisted)
    return RedirectResponse(f"/m/{tenant.ags}/events/{event_id}#invitations", status_code=303)


# -- check-in at the door -----------------------------------------------------------------------------


async def _checkin_rows(
    api: clients.Services, ags: str, accepted: list[clients.Invitation], q: str
) -> tuple[list[tuple[clients.Invitation, str]], bool]:
    """Return (invitation, name) of accepted invitees matching ``q``, by name; and whether a search is needed."""
    if q:
        page = await api.registry.members(ags, name=q, limit=500)
        names = {m.member_id: f"{m.family_name}, {m.given_name}" for m in page.items}
    elif len(accepted) <= CHECKIN_LIST_ALL_UP_TO:
        names = await member_names(api, ags, (i.member_id for i in accepted))
    else:
        return [], True
    rows = [(i, names[i.member_id]) for i in accepted if i.member_id in names]
    return sorted(rows, key=lambda r: r[1].casefold()), False


@router.get("/{event_id}/checkin", summary="Check-in at the door")
async def checkin(
    request: Request,
    event_id: str,
    tenant: CurrentTenant,
    user: StaffUser,
    api: Services,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Search an accepted invitee by name and check them in with one tap (made for a phone)."""
    q = q.strip()
    event, accepted = await asyncio.gather(
        api.events.event(tenant.ags, event_id), api.events.invitations(tenant.ags, event_id, status="accepted")
    )
    rows, search_needed = await _checkin_rows(api, tenant.ags, accepted, q)
    return render(
        request,
        "events/checkin.html",
        {
            "event": event,
            "rows": rows,
            "q": q,
            "search_needed": search_needed,
            "accepted": len(accepted),
            "present": sum(1 for i in accepted if i.attended),
        },
    )


@router.post("/{event_id}/checkin/{invitation_id}", summary="Check an invitee in (one tap)")
async def check_in(
    request: Request, event_id: str, invitation_id: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Record the attendance; htmx swaps the row, without JavaScript the page comes back with a message."""
    form = await request.form()
    attended = text(form, "attended") != "false"
    q = text(form, "q")
    invitation = await api.events.record_attendance(tenant.ags, event_id, invitation_id, attended=attended)
    names = await member_names(api, tenant.ags, [invitation.member_id])
    name = names.get(invitation.member_id, "–")
    if request.headers.get("HX-Request") == "true":
        accepted = await api.events.invitations(tenant.ags, event_id, status="accepted")
        return render(
            request,
            "events/_checkin_row.html",
            {
                "event_id": event_id,
                "invitation": invitation,
                "name": name,
                "q": q,
                "just_done": True,
                "accepted": len(accepted),
                "present": sum(1 for i in accepted if i.attended),
                "oob": True,
            },
        )
    flash(request, "events.checked_in" if attended else "events.checked_out", name=name)
    suffix = f"?{urlencode({'q': q})}" if q else ""
    return RedirectResponse(f"/m/{tenant.ags}/events/{event_id}/checkin{suffix}", status_code=303)

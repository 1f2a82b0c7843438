"""Page 7, letters: the delivery log by status, resend, template preview per kind and language, branding."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.forms import FormErrors, errors_from, optional, text, values
from engagiert.console.i18n import LANGUAGES
from engagiert.console.people import member_names
from engagiert.console.rendering import flash, render
from engagiert.shared.contracts.letters import LETTERS
from engagiert.shared.contracts.notifications import TemplateName

router = APIRouter(prefix="/m/{ags}/letters", tags=["letters"])

STATUSES = ("queued", "sending", "sent", "failed", "suppressed", "cancelled")
RESENDABLE = ("sent", "failed", "suppressed", "cancelled")
KINDS: tuple[str, ...] = get_args(TemplateName)
PAGE_SIZE = 50
BRANDING_FIELDS = {"name", "signature", "logo_url"}


# The contracts' examples are German; an English preview shows English sample words where a
# template prints them as given (titles, venue, notes, reasons, free text).
_ENGLISH_SAMPLES: dict[str, str] = {
    "event_title": "Reception on Volunteer Day",
    "venue": "Town hall",
    "notes": "Please bring the invitation.",
    "reason": "because of the storm",
    "subject": "News",
    "body": "Your text goes here.",
}


def sample_params(kind: str, language: str) -> dict[str, Any]:
    """Return sample parameters for a template preview: the example of the kind's letter contract.

    The contracts live in ``engagiert.shared.contracts.letters``, the one place that says what each
    template kind takes; a hand-kept copy here drifted from them once (the preview answered 422).
    """
    model = LETTERS.get(kind)
    params: dict[str, Any] = dict(model.example().to_params()) if model else {}
    if language == "en":
        params.update({k: v for k, v in _ENGLISH_SAMPLES.items() if params.get(k)})
    return params


# -- the delivery log ---------------------------------------------------------------------------------


@router.get("", summary="The delivery log, by status")
async def delivery_log(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    status: Annotated[str | None, Query(max_length=20)] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    """List deliveries newest first, filtered by status, with resend for staff."""
    status_ = status if status in STATUSES else None
    deliveries = await api.notifications.deliveries(tenant.ags, status=status_, limit=PAGE_SIZE + 1, offset=offset)
    more = len(deliveries) > PAGE_SIZE
    deliveries = deliveries[:PAGE_SIZE]
    names = await member_names(api, tenant.ags, (d.member_id for d in deliveries))
    return render(
        request,
        "letters/log.html",
        {
            "deliveries": deliveries,
            "names": names,
            "status": status_ or "",
            "statuses": STATUSES,
            "resendable": RESENDABLE,
            "offset": offset,
            "more": more,
            "page_size": PAGE_SIZE,
        },
    )


@router.post("/{delivery_id}/resend", summary="Send a delivery again")
async def resend(request: Request, delivery_id: str, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Queue the delivery again (consent and member status are checked again); back to the log."""
    form = await request.form()
    status = text(form, "status")
    try:
        await api.notifications.resend(tenant.ags, delivery_id)
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        flash(request, "letters.resend_refused")
    else:
        flash(request, "letters.resent")
    suffix = f"?status={status}" if status in STATUSES else ""
    return RedirectResponse(f"/m/{tenant.ags}/letters{suffix}", status_code=303)


# -- template preview ---------------------------------------------------------------------------------


def _choice(kind: str | None, language: str | None) -> tuple[str, str]:
    return (kind if kind in KINDS else "invitation", language if language in LANGUAGES else "de")


@router.get("/templates", summary="Template preview per kind and language")
async def templates(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    api: Services,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    language: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    """Show a message as a member would get it: subject, the HTML with the branding, the plain text."""
    kind_, language_ = _choice(kind, language)
    message: clients.RenderedMessage | None = None
    if user.can_write:  # the notifications service renders previews for staff only
        message = await api.notifications.preview_template(
            tenant.ags, kind_, {"language": language_, "params": sample_params(kind_, language_)}
        )
    return render(
        request,
        "letters/templates.html",
        {"kinds": KINDS, "kind": kind_, "language": language_, "languages": LANGUAGES, "message": message},
    )


@router.get("/templates/{kind}/{language}.html", summary="A template's HTML, for the preview frame")
async def template_html(
    request: Request, kind: str, language: str, tenant: CurrentTenant, user: StaffUser, api: Services
) -> Response:
    """Return the rendered HTML alone, sandboxed: no scripts, framed only by the console itself."""
    kind_, language_ = _choice(kind, language)
    message = await api.notifications.preview_template(
        tenant.ags, kind_, {"language": language_, "params": sample_params(kind_, language_)}
    )
    # The message's own inline styles are allowed here, nothing else; the console's pages keep their strict policy.
    return HTMLResponse(
        message.html,
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'; sandbox"
            ),
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


# -- branding -----------------------------------------------------------------------------------------


def _branding_page(
    request: Request,
    branding: clients.Branding,
    *,
    form: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    form = form or {"name": branding.name, "signature": branding.signature, "logo_url": branding.logo_url or ""}
    return render(
        request,
        "letters/branding.html",
        {"branding": branding, "form": form, "errors": errors or FormErrors()},
        status=status,
    )


@router.get("/branding", summary="The municipality's branding of its messages")
async def branding(request: Request, tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """Show the branding (name, signature, logo) and, for staff, the form to change it."""
    return _branding_page(request, await api.notifications.branding(tenant.ags))


@router.post("/branding", summary="Change the branding")
async def save_branding(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Store the branding every message of this municipality carries; refusals appear next to their fields."""
    form = await request.form()
    body = {"name": text(form, "name"), "signature": text(form, "signature"), "logo_url": optional(form, "logo_url")}
    try:
        await api.notifications.put_branding(tenant.ags, body)
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        current = await api.notifications.branding(tenant.ags)
        errors = errors_from(exc, known=BRANDING_FIELDS)
        if "logo_url" in errors.fields:
            errors.fields["logo_url"] = ["letters.logo_url_invalid"]
        return _branding_page(request, current, form=values(form), errors=errors, status=exc.status)
    flash(request, "letters.branding_saved")
    return RedirectResponse(f"/m/{tenant.ags}/letters/branding", status_code=303)

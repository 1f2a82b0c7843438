"""Serves an event's invitations to staff: preview, issue, list, check-in and the venue's list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from engagiert.events import domain
from engagiert.events.api.deps import InvitationUseCases, response_doc
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.csvfiles import DIALECT_QUERY, CsvDialect, csv_response

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["recognition"])


@router.post("/events/{event_id}/invitations/preview", summary="Preview invitations by criteria")
async def preview(
    ags: str, event_id: str, criteria: domain.InvitationCriteria, _p: Staff, uc: InvitationUseCases
) -> dict[str, Any]:
    """Show how many members match, how many would be invited and how many would wait."""
    return await uc.preview(ags, event_id, criteria)


@router.post("/events/{event_id}/invitations/issue", summary="Issue invitations by criteria (idempotent)")
async def issue(
    ags: str, event_id: str, criteria: domain.InvitationCriteria, _p: Staff, uc: InvitationUseCases
) -> dict[str, Any]:
    """Invite every matching member once; offers up to the capacity, the rest on the waitlist."""
    return await uc.issue(ags, event_id, criteria)


@router.get("/events/{event_id}/invitations", summary="List invitations")
async def list_invitations(
    ags: str,
    event_id: str,
    _p: Reader,
    uc: InvitationUseCases,
    status: Literal["invited", "waitlisted", "accepted", "declined", "withdrawn"] | None = None,
) -> list[dict[str, Any]]:
    """List an event's invitations in issue order."""
    return [response_doc(d) for d in await uc.invitations(ags, event_id, status)]


class AttendanceBody(BaseModel):
    """A check-in (or a no-show)."""

    model_config = ConfigDict(extra="forbid")

    attended: bool = True


@router.post("/events/{event_id}/invitations/{invitation_id}/attendance", summary="Check in an invitee")
async def attendance(
    ags: str, event_id: str, invitation_id: str, body: AttendanceBody, _p: Staff, uc: InvitationUseCases
) -> dict[str, Any]:
    """Record that an accepted invitee attended (or did not)."""
    return response_doc(await uc.record_attendance(ags, event_id, invitation_id, body.attended))


@router.get(
    "/events/{event_id}/attendees.csv",
    summary="The list for the venue (CSV; formula cells neutralised; dialect=excel-de for German Excel)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def attendees_csv(
    ags: str,
    event_id: str,
    _p: Staff,
    uc: InvitationUseCases,
    dialect: Annotated[CsvDialect, DIALECT_QUERY] = "rfc4180",
) -> Response:
    """Return accepted invitees with their guests and check-in state."""
    body = await uc.venue_csv(ags, event_id, dialect=dialect)
    return csv_response(body, filename=f"teilnehmende-{event_id}.csv")

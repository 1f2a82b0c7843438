"""Serves recognition events to staff: create, list, show with counts, change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engagiert.events.api.deps import EventsUseCases, response_doc
from engagiert.events.services import EventCreate, EventUpdate
from engagiert.shared.auth import Reader, Staff

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["recognition"])


@router.post("/events", status_code=201, summary="Create a recognition event")
async def create_event(ags: str, body: EventCreate, _p: Staff, uc: EventsUseCases) -> dict[str, Any]:
    """Create a recognition event (draft or scheduled)."""
    return response_doc(await uc.create_event(ags, body))


@router.get("/events", summary="List recognition events")
async def list_events(ags: str, _p: Reader, uc: EventsUseCases) -> list[dict[str, Any]]:
    """List a municipality's recognition events."""
    return [response_doc(d) for d in await uc.repo.events_of(ags)]


@router.get("/events/{event_id}", summary="Show a recognition event with its counts")
async def get_event(ags: str, event_id: str, _p: Reader, uc: EventsUseCases) -> dict[str, Any]:
    """Show an event, its seats taken and its invitations per status."""
    return response_doc(await uc.summary(ags, event_id))


@router.patch("/events/{event_id}", summary="Change, schedule, cancel or complete an event")
async def patch_event(ags: str, event_id: str, body: EventUpdate, _p: Staff, uc: EventsUseCases) -> dict[str, Any]:
    """Change an event or move it to another status."""
    return response_doc(await uc.update_event(ags, event_id, body))

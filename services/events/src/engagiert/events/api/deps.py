"""Holds what the routers share: the use cases of a request and the shape of a stored document in a response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from engagiert.events.services import EventsService, Honours, Invitations, RecognitionEvents, Rsvp


def get_service(request: Request) -> EventsService:
    """Return the use cases of this request."""
    factory = request.app.state.use_cases
    service: EventsService = factory()
    return service


Service = Annotated[EventsService, Depends(get_service)]


def recognition_events(service: Service) -> RecognitionEvents:
    """Return the use cases of recognition events."""
    return service.recognition_events


def invitations(service: Service) -> Invitations:
    """Return the use cases of issuing invitations and attendance."""
    return service.invitations


def rsvp(service: Service) -> Rsvp:
    """Return the use cases of answering an invitation."""
    return service.rsvp


def honours(service: Service) -> Honours:
    """Return the use cases of honours."""
    return service.honours


EventsUseCases = Annotated[RecognitionEvents, Depends(recognition_events)]
InvitationUseCases = Annotated[Invitations, Depends(invitations)]
RsvpUseCases = Annotated[Rsvp, Depends(rsvp)]
HonourUseCases = Annotated[Honours, Depends(honours)]


def response_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a stored document as the API shows it: ``_id`` as ``id``, no internal fields."""
    out = {k: v for k, v in doc.items() if not k.startswith("_") or k == "_id"}
    out["id"] = out.pop("_id")
    return out

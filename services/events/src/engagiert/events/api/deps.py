"""Holds what the routers share: the use cases of a request and the shape of a stored document in a response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from engagiert.events.services import Honours, Invitations, RecognitionEvents, Rsvp, UseCases


def use_cases(request: Request) -> UseCases:
    """Return the use cases of this app."""
    factory = request.app.state.use_cases
    result: UseCases = factory()
    return result


AllUseCases = Annotated[UseCases, Depends(use_cases)]


def recognition_events(uc: AllUseCases) -> RecognitionEvents:
    """Return the use cases of recognition events."""
    return uc.recognition_events


def invitations(uc: AllUseCases) -> Invitations:
    """Return the use cases of issuing invitations and attendance."""
    return uc.invitations


def rsvp(uc: AllUseCases) -> Rsvp:
    """Return the use cases of answering an invitation."""
    return uc.rsvp


def honours(uc: AllUseCases) -> Honours:
    """Return the use cases of honours."""
    return uc.honours


EventsUseCases = Annotated[RecognitionEvents, Depends(recognition_events)]
InvitationUseCases = Annotated[Invitations, Depends(invitations)]
RsvpUseCases = Annotated[Rsvp, Depends(rsvp)]
HonourUseCases = Annotated[Honours, Depends(honours)]


def response_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a stored document as the API shows it: ``_id`` as ``id``, no internal fields."""
    out = {k: v for k, v in doc.items() if not k.startswith("_") or k == "_id"}
    out["id"] = out.pop("_id")
    return out

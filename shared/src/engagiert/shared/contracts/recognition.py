"""Contracts of ``events.recognition.v1``: facts about recognition events, invitations and honours.

Events about a recognition event (and its invitations and attendance) are keyed by the event
id, so they stay in order; events about an honour are keyed by the member id. No contact data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import Field

from engagiert.shared import topics
from engagiert.shared.contracts.base import Ags, EntityId, EventData

RecognitionKind = Literal[
    "Feierstunde",
    "Ehrenamtsempfang",
    "Tag des Ehrenamts",
    "Preisverleihung",
    "Jubiläumsehrung",
    "Sonstiges",
]
HonourKind = Literal[
    "ehrenamtskarte",
    "jubilaeums-ehrenamtskarte",
    "engagementnachweis",
    "local-award",
]
RsvpAnswer = Literal["accepted", "declined"]


class RecognitionEventScheduled(EventData):
    """A recognition event was scheduled."""

    TYPE: ClassVar[str] = "de.engagiert.recognition-event.scheduled.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    event_id: EntityId
    municipality: Ags
    kind: RecognitionKind
    title: str
    starts_at: datetime
    venue: str
    capacity: int = Field(ge=1)
    guests_per_invitee: int = Field(ge=0)
    rsvp_deadline: datetime


class RecognitionEventChanged(EventData):
    """A scheduled recognition event changed (time, venue, capacity, ...)."""

    TYPE: ClassVar[str] = "de.engagiert.recognition-event.changed.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    event_id: EntityId
    municipality: Ags
    changed: list[str]
    starts_at: datetime
    venue: str
    capacity: int
    rsvp_deadline: datetime


class RecognitionEventCancelled(EventData):
    """A recognition event was cancelled."""

    TYPE: ClassVar[str] = "de.engagiert.recognition-event.cancelled.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    event_id: EntityId
    municipality: Ags
    reason: str | None = None


class InvitationIssued(EventData):
    """A member was invited to a recognition event (or put on its waitlist)."""

    TYPE: ClassVar[str] = "de.engagiert.invitation.issued.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    invitation_id: EntityId
    event_id: EntityId
    municipality: Ags
    member_id: EntityId
    waitlisted: bool = False
    waitlist_position: int | None = None


class InvitationResponded(EventData):
    """An invited member accepted (with a number of guests) or declined."""

    TYPE: ClassVar[str] = "de.engagiert.invitation.responded.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    invitation_id: EntityId
    event_id: EntityId
    municipality: Ags
    member_id: EntityId
    answer: RsvpAnswer
    guests: int = Field(default=0, ge=0)


class InvitationPromoted(EventData):
    """A waitlisted invitation moved up because a seat became free."""

    TYPE: ClassVar[str] = "de.engagiert.invitation.promoted.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    invitation_id: EntityId
    event_id: EntityId
    municipality: Ags
    member_id: EntityId


class InvitationWithdrawn(EventData):
    """An open invitation was withdrawn by the platform (its member was erased); its seats are free again."""

    TYPE: ClassVar[str] = "de.engagiert.invitation.withdrawn.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    invitation_id: EntityId
    event_id: EntityId
    municipality: Ags
    member_id: EntityId
    reason: Literal["member-erased"] = "member-erased"


class AttendanceRecorded(EventData):
    """Staff recorded whether an invited member attended."""

    TYPE: ClassVar[str] = "de.engagiert.attendance.recorded.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    invitation_id: EntityId
    event_id: EntityId
    municipality: Ags
    member_id: EntityId
    attended: bool


class _HonourFact(EventData):
    honour_id: EntityId
    municipality: Ags
    member_id: EntityId
    kind: HonourKind

    def partition_key(self) -> str:
        """Return the member id: a member's honours stay in order."""
        return self.member_id


class HonourProposed(_HonourFact):
    """The service found a member eligible for an honour and proposes it to staff."""

    TYPE: ClassVar[str] = "de.engagiert.honour.proposed.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    reason: str
    renewal_of: EntityId | None = None


class HonourGranted(_HonourFact):
    """Staff granted an honour."""

    TYPE: ClassVar[str] = "de.engagiert.honour.granted.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    card_number: str | None = None
    valid_from: date
    valid_until: date | None = Field(default=None, description="None: lifelong")


class HonourRejected(_HonourFact):
    """Staff rejected a proposed honour, with a reason."""

    TYPE: ClassVar[str] = "de.engagiert.honour.rejected.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    reason: str


class HonourExpired(_HonourFact):
    """A granted honour reached the end of its validity."""

    TYPE: ClassVar[str] = "de.engagiert.honour.expired.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    expired_on: date


class HonourRevoked(_HonourFact):
    """A proposed or granted honour was revoked (its member was erased); its card no longer verifies."""

    TYPE: ClassVar[str] = "de.engagiert.honour.revoked.v1"
    TOPIC: ClassVar[str] = topics.EVENTS_RECOGNITION

    reason: Literal["member-erased"] = "member-erased"

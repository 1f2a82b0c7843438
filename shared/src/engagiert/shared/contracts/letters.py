"""Defines the parameters of each letter kind: what a producer puts into ``NotificationRequested.params``.

One pydantic model per template kind, with an example. The producing service builds the model
and sends ``model.to_params()`` (flat JSON values, so the request stays the
``dict[str, ParamValue]`` it always was); notifications validates the params with the same model
before it renders. Times travel as ISO 8601 with their offset and are shown in Europe/Berlin; the
wording (weekday, month, "Uhr") is the renderer's, per the member's language.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field

from engagiert.shared.contracts.base import EntityId
from engagiert.shared.contracts.notifications import ParamValue, TemplateName
from engagiert.shared.contracts.recognition import HonourKind, RecognitionKind

LetterAnswer = Literal["accepted", "declined", "waitlisted"]
"""An invitee's answer as the confirmation names it (``waitlisted``: accepted, but no seat was free)."""

_EXAMPLE_URL = "https://engagiert.example/v1/rsvp/eyJpbnYiOiJldnQtMjAyNi0xMi0wNTptLTAwMDEifQ"
_EXAMPLE_START = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)  # 17:00 in Paderborn
_EXAMPLE_DEADLINE = datetime(2026, 11, 27, 22, 59, tzinfo=UTC)  # 23:59


class LetterParams(BaseModel):
    """Base of every letter kind's parameters: flat values only, unknown names refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    KIND: ClassVar[TemplateName]
    TRANSACTIONAL: ClassVar[bool] = True
    """Whether the letter is part of something the member did or holds (an answer, a seat, a card, an event
    they are invited to that changed): sent as long as the channel's consent stands, without an unsubscribe
    link. Kinds that offer something new (an invitation, its reminder, a staff circular) say False: their mails
    carry ``List-Unsubscribe`` and a visible link (RFC 8058); see docs/letters.md."""

    def to_params(self) -> dict[str, ParamValue]:
        """Return the parameters as ``NotificationRequested.params`` carries them (JSON values, no nulls)."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}

    @classmethod
    def parse_params(cls, params: dict[str, Any]) -> LetterParams:
        """Validate received params; names this version does not know (a newer producer's) are dropped."""
        known = {name for f in cls.model_fields.values() for name in _names(f.validation_alias)} | set(cls.model_fields)
        return cls.model_validate({k: v for k, v in params.items() if k in known})

    @classmethod
    def example(cls) -> LetterParams:
        """Return the example the contract documents (also what previews and the golden files render)."""
        raise NotImplementedError


def _names(alias: object) -> list[str]:
    if isinstance(alias, AliasChoices):
        return [a for a in alias.choices if isinstance(a, str)]
    return [alias] if isinstance(alias, str) else []


class _EventLetter(LetterParams):
    """What every letter about one invitation to a recognition event names."""

    invitation_id: EntityId | None = Field(
        default=None, description="the invitation: the calendar entry's UID is derived from it (none: no entry)"
    )
    event_title: str = Field(min_length=1, max_length=200)
    event_kind: RecognitionKind
    starts_at: AwareDatetime = Field(validation_alias=AliasChoices("starts_at", "event_date"))
    ends_at: AwareDatetime | None = None
    venue: str = Field(min_length=1, max_length=300, validation_alias=AliasChoices("venue", "location"))
    venue_address: str | None = Field(default=None, max_length=300, description="street, postal code and city")
    calendar_sequence: int = Field(
        default=0, ge=0, description="raised with every change of time or venue (iCalendar SEQUENCE)"
    )


def _event_example() -> dict[str, Any]:
    return {
        "invitation_id": "evt-2026-12-05:m-0001",
        "event_title": "Empfang zum Tag des Ehrenamts",
        "event_kind": "Tag des Ehrenamts",
        "starts_at": _EXAMPLE_START,
        "ends_at": datetime(2026, 12, 5, 19, 0, tzinfo=UTC),
        "venue": "Historisches Rathaus Paderborn",
        "venue_address": "Rathausplatz 1, 33098 Paderborn",
    }


class InvitationLetter(_EventLetter):
    """An invitation with its RSVP link and the calendar entry."""

    KIND: ClassVar[TemplateName] = "invitation"
    TRANSACTIONAL: ClassVar[bool] = False

    notes: str | None = Field(default=None, max_length=2000, description="e.g. dress code, accessibility, parking")
    guests_per_invitee: int = Field(ge=0, le=10)
    rsvp_deadline: AwareDatetime
    rsvp_url: AnyHttpUrl

    @classmethod
    def example(cls) -> InvitationLetter:
        """Return the invitation to the 5 December reception."""
        return cls(
            **_event_example(),
            notes="Der Saal ist barrierefrei über den Eingang am Marienplatz erreichbar.",
            guests_per_invitee=1,
            rsvp_deadline=_EXAMPLE_DEADLINE,
            rsvp_url=AnyHttpUrl(_EXAMPLE_URL),
        )


class RsvpReminderLetter(_EventLetter):
    """A reminder before the RSVP deadline to an invitee who has not answered."""

    KIND: ClassVar[TemplateName] = "rsvp-reminder"
    TRANSACTIONAL: ClassVar[bool] = False

    rsvp_deadline: AwareDatetime
    rsvp_url: AnyHttpUrl

    @classmethod
    def example(cls) -> RsvpReminderLetter:
        """Return the reminder two days before the deadline."""
        return cls(
            **_event_example(),
            rsvp_deadline=_EXAMPLE_DEADLINE,
            rsvp_url=AnyHttpUrl(_EXAMPLE_URL),
        )


class RsvpConfirmationLetter(_EventLetter):
    """The confirmation of an answer: accepted (with guests), declined, or on the waitlist."""

    KIND: ClassVar[TemplateName] = "rsvp-confirmation"

    answer: LetterAnswer
    guests: int = Field(default=0, ge=0, le=10)
    rsvp_deadline: AwareDatetime
    rsvp_url: AnyHttpUrl = Field(description="to change the answer until the deadline")

    @classmethod
    def example(cls) -> RsvpConfirmationLetter:
        """Return the confirmation of an acceptance with one guest."""
        return cls(
            **_event_example(),
            answer="accepted",
            guests=1,
            rsvp_deadline=_EXAMPLE_DEADLINE,
            rsvp_url=AnyHttpUrl(_EXAMPLE_URL),
        )


class WaitlistPromotedLetter(_EventLetter):
    """A seat became free for a waitlisted invitee: the place is theirs (with the calendar entry)."""

    KIND: ClassVar[TemplateName] = "waitlist-promoted"

    rsvp_deadline: AwareDatetime
    rsvp_url: AnyHttpUrl = Field(description="to decline if they cannot come after all")

    @classmethod
    def example(cls) -> WaitlistPromotedLetter:
        """Return the promotion a week before the reception."""
        return cls(
            **_event_example(),
            rsvp_deadline=_EXAMPLE_DEADLINE,
            rsvp_url=AnyHttpUrl(_EXAMPLE_URL),
        )


class EventChangedLetter(_EventLetter):
    """Time or venue of an event changed: the calendar entry is updated (SEQUENCE raised)."""

    KIND: ClassVar[TemplateName] = "event-changed"

    rsvp_url: AnyHttpUrl = Field(description="to change the answer")

    @classmethod
    def example(cls) -> EventChangedLetter:
        """Return the reception moved by an hour."""
        values = _event_example() | {"starts_at": datetime(2026, 12, 5, 17, 0, tzinfo=UTC), "calendar_sequence": 1}
        return cls(**values, rsvp_url=AnyHttpUrl(_EXAMPLE_URL))


class EventCancelledLetter(_EventLetter):
    """An event was cancelled: the calendar entry is withdrawn (METHOD:CANCEL)."""

    KIND: ClassVar[TemplateName] = "event-cancelled"

    reason: str | None = Field(default=None, max_length=500)

    @classmethod
    def example(cls) -> EventCancelledLetter:
        """Return the cancellation of the reception."""
        return cls(**_event_example(), calendar_sequence=2, reason="Der Saal ist wegen eines Wasserschadens gesperrt.")


class _HonourLetter(LetterParams):
    honour_kind: HonourKind = Field(validation_alias=AliasChoices("honour_kind", "kind"))
    honour_title: str | None = Field(
        default=None, max_length=200, description="the name of a local award; the kinds of NRW have their own"
    )


class HonourGrantedLetter(_HonourLetter):
    """An honour was granted: card number, validity and the check link (also as a QR code)."""

    KIND: ClassVar[TemplateName] = "honour-granted"

    card_number: str | None = Field(default=None, max_length=40)
    valid_from: date
    valid_until: date | None = Field(default=None, description="none: valid for life")
    verify_url: AnyHttpUrl | None = None

    @classmethod
    def example(cls) -> HonourGrantedLetter:
        """Return an Ehrenamtskarte NRW valid for three years."""
        return cls(
            honour_kind="ehrenamtskarte",
            card_number="PB-2026-0042",
            valid_from=date(2026, 12, 5),
            valid_until=date(2029, 12, 4),
            verify_url=AnyHttpUrl("https://engagiert.example/v1/honours/verify/eyJjYXJkIjoiUEItMjAyNi0wMDQyIn0"),
        )


class HonourRenewalLetter(_HonourLetter):
    """A card runs out: the contact point proposed its renewal."""

    KIND: ClassVar[TemplateName] = "honour-renewal"

    card_number: str | None = Field(default=None, max_length=40)
    valid_until: date

    @classmethod
    def example(cls) -> HonourRenewalLetter:
        """Return the renewal of an Ehrenamtskarte running out at the end of March."""
        return cls(honour_kind="ehrenamtskarte", card_number="PB-2023-0017", valid_until=date(2027, 3, 31))


class HonourRejectedLetter(_HonourLetter):
    """A proposed honour was not granted, with the reason."""

    KIND: ClassVar[TemplateName] = "honour-rejected"

    reason: str = Field(min_length=1, max_length=500)

    @classmethod
    def example(cls) -> HonourRejectedLetter:
        """Return a rejection for too few hours."""
        return cls(
            honour_kind="ehrenamtskarte",
            reason="Für die Ehrenamtskarte NRW sind 250 Stunden im Jahr nötig; bisher sind 180 Stunden erfasst.",
        )


class GenericLetter(LetterParams):
    """A message written by staff: subject and body (paragraphs separated by blank lines)."""

    KIND: ClassVar[TemplateName] = "generic"
    TRANSACTIONAL: ClassVar[bool] = False

    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=10_000)

    @classmethod
    def example(cls) -> GenericLetter:
        """Return a note about the new opening hours."""
        return cls(
            subject="Neue Sprechzeiten der Anlaufstelle",
            body="ab Januar sind wir dienstags und donnerstags von 9 bis 16 Uhr für Sie da.\n\n"
            "Termine außerhalb dieser Zeiten vereinbaren wir gern telefonisch.",
        )


LETTERS: dict[str, type[LetterParams]] = {
    model.KIND: model
    for model in (
        InvitationLetter,
        RsvpReminderLetter,
        RsvpConfirmationLetter,
        WaitlistPromotedLetter,
        EventChangedLetter,
        EventCancelledLetter,
        HonourGrantedLetter,
        HonourRenewalLetter,
        HonourRejectedLetter,
        GenericLetter,
    )
}
"""The parameters' model of every template kind."""


def is_transactional(template: str) -> bool:
    """Return whether a kind of letter is transactional (unknown kinds count as not: they get the link)."""
    model = LETTERS.get(template)
    return model is not None and model.TRANSACTIONAL


def letter_params(template: str, params: dict[str, Any]) -> LetterParams:
    """Return the validated parameters of a request for ``template`` (KeyError for an unknown kind)."""
    return LETTERS[template].parse_params(params)


__all__ = [
    "LETTERS",
    "EventCancelledLetter",
    "EventChangedLetter",
    "GenericLetter",
    "HonourGrantedLetter",
    "HonourRejectedLetter",
    "HonourRenewalLetter",
    "InvitationLetter",
    "LetterAnswer",
    "LetterParams",
    "RsvpConfirmationLetter",
    "RsvpReminderLetter",
    "WaitlistPromotedLetter",
    "is_transactional",
    "letter_params",
]

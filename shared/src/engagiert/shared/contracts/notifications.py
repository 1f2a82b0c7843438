"""Contracts of ``notifications.requests.v1`` and ``notifications.deliveries.v1``, keyed by member id.

A request names a member, never an address: the notifications service resolves the contact
and the consent from its own read model. The CloudEvent id of a request is its idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from engagiert.shared import topics
from engagiert.shared.contracts.base import Ags, Command, EntityId, EventData

TemplateName = Literal[
    "invitation",
    "rsvp-reminder",
    "rsvp-confirmation",
    "waitlist-promoted",
    "event-changed",
    "event-cancelled",
    "honour-granted",
    "honour-renewal",
    "honour-rejected",
    "generic",
]
"""The template kinds; each one's parameters are a model in :mod:`engagiert.shared.contracts.letters`."""
ParamValue = str | int | float | bool | None


class NotificationRequested(Command):
    """Write to a member with a template, now or not before a given time."""

    TYPE: ClassVar[str] = "de.engagiert.notification.request.v1"
    TOPIC: ClassVar[str] = topics.NOTIFICATIONS_REQUESTS

    municipality: Ags
    member_id: EntityId
    template: TemplateName
    params: dict[str, ParamValue] = Field(default_factory=dict)
    channel: Literal["email"] = "email"
    not_before: datetime | None = None
    cancel_key: str | None = Field(
        default=None,
        max_length=200,
        description="groups scheduled sends that a later cancel request may withdraw",
    )


class NotificationCancelRequested(Command):
    """Withdraw scheduled sends that carry a cancel key and have not been sent yet."""

    TYPE: ClassVar[str] = "de.engagiert.notification.cancel.v1"
    TOPIC: ClassVar[str] = topics.NOTIFICATIONS_REQUESTS

    municipality: Ags
    cancel_key: str = Field(min_length=1, max_length=200)
    member_id: EntityId | None = Field(default=None, description="None: every member's")

    def partition_key(self) -> str:
        """Return the member id, or the cancel key when it applies to every member."""
        return self.member_id or self.cancel_key


class _DeliveryFact(EventData):
    delivery_id: EntityId
    request_id: str
    municipality: Ags
    member_id: EntityId
    template: str
    channel: Literal["email", "post", "phone"] = "email"
    attempts: int = Field(ge=0)


class DeliverySent(_DeliveryFact):
    """The mail server accepted a message for the member."""

    TYPE: ClassVar[str] = "de.engagiert.delivery.sent.v1"
    TOPIC: ClassVar[str] = topics.NOTIFICATIONS_DELIVERIES

    sent_at: datetime


class DeliveryFailed(_DeliveryFact):
    """A message could not be delivered (permanent error or retries used up)."""

    TYPE: ClassVar[str] = "de.engagiert.delivery.failed.v1"
    TOPIC: ClassVar[str] = topics.NOTIFICATIONS_DELIVERIES

    reason: str


class DeliverySuppressed(_DeliveryFact):
    """A message was not sent on purpose (no consent, member left or erased, no address)."""

    TYPE: ClassVar[str] = "de.engagiert.delivery.suppressed.v1"
    TOPIC: ClassVar[str] = topics.NOTIFICATIONS_DELIVERIES

    reason: Literal["no-consent", "member-left", "member-erased", "no-address", "unknown-member"]

    @model_validator(mode="after")
    def _has_no_attempts(self) -> DeliverySuppressed:
        if self.attempts != 0:
            raise ValueError("a suppressed delivery has no attempts")
        return self

"""Contracts of the registry's inbound topics: commands other systems send to the registry.

External systems (a club-management system, a volunteer agency's database) identify a member
by their own reference (``system`` + ``id``, unique per municipality and system). Our own
services confirm an erasure on ``registry.erasure-confirmations.v1``; notifications passes on a
member's unsubscribe here (``registry.inbound.v1``). Commands refuse unknown fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import EmailStr, Field, model_validator

from engagiert.shared import topics
from engagiert.shared.contracts.base import Ags, Channel, Command, EntityId, Field_, Hours, Language
from engagiert.shared.contracts.members import ExternalRef, PostalAddress


class RegisterMember(Command):
    """Register a member, or update the one with this external reference."""

    TYPE: ClassVar[str] = "de.engagiert.member.register.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_INBOUND

    municipality: Ags
    external_ref: ExternalRef
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    postal_address: PostalAddress | None = None
    language: Language = "de"
    consent_channels: list[Literal["email", "post", "phone"]] | None = Field(
        default=None, description="given consent; omitted keeps the consent the registry has"
    )
    organisation_name: str | None = Field(default=None, max_length=200)
    field: Field_ | None = None
    role: str | None = Field(default=None, max_length=200)
    since: date | None = None

    def partition_key(self) -> str:
        """Return the external reference: commands for one person stay in order."""
        return f"{self.external_ref.system}:{self.external_ref.id}"


class ReportHours(Command):
    """Report hours of a member, named by external reference or member id."""

    TYPE: ClassVar[str] = "de.engagiert.hours.report.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_INBOUND

    municipality: Ags
    external_ref: ExternalRef | None = None
    member_id: EntityId | None = None
    hours: Hours
    date_from: date
    date_to: date | None = None
    organisation_name: str | None = Field(default=None, max_length=200)
    reported_by: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _names_exactly_one_member(self) -> ReportHours:
        if (self.external_ref is None) == (self.member_id is None):
            raise ValueError("name the member by exactly one of external_ref or member_id")
        if self.date_to is not None and self.date_to < self.date_from:
            raise ValueError("date_to must not be before date_from")
        return self

    def partition_key(self) -> str:
        """Return the member reference."""
        if self.member_id:
            return self.member_id
        assert self.external_ref is not None
        return f"{self.external_ref.system}:{self.external_ref.id}"


class ConfirmErasure(Command):
    """Confirm that a service removed a member's personal data."""

    TYPE: ClassVar[str] = "de.engagiert.erasure.confirm.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_ERASURE_CONFIRMATIONS

    member_id: EntityId
    municipality: Ags
    service: Literal["events", "notifications"]
    erased_at: datetime


class WithdrawConsent(Command):
    """Withdraw a member's consent to some channels (the member followed an unsubscribe link).

    Notifications sends it; the registry, the one owner of consent, applies it once per event id
    and publishes ``member.consent-changed`` as for any change. The channels not named stay.
    """

    TYPE: ClassVar[str] = "de.engagiert.consent.withdraw.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_INBOUND

    member_id: EntityId
    municipality: Ags
    channels: list[Channel] = Field(min_length=1, max_length=3, description="the channels to withdraw")
    source: Literal["unsubscribe-link"] = Field(default="unsubscribe-link", description="how the member asked")
    requested_at: datetime

"""Contracts of ``registry.engagement.v1``: facts about hours and engagements, keyed by member id."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field, model_validator

from engagiert.shared import topics
from engagiert.shared.contracts.base import Ags, EntityId, EventData, Hours
from engagiert.shared.contracts.members import Engagement, HoursTotals


class HoursRecorded(EventData):
    """Hours of volunteer work were recorded for a member, for a day or a period."""

    TYPE: ClassVar[str] = "de.engagiert.hours.recorded.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_ENGAGEMENT

    entry_id: EntityId
    member_id: EntityId
    municipality: Ags
    hours: Hours
    date_from: date
    date_to: date | None = None
    organisation_id: EntityId | None = None
    reported_by: str = Field(max_length=200, description="staff user or external system")
    totals: HoursTotals = Field(description="the member's figures including this entry")

    @model_validator(mode="after")
    def _period_is_ordered(self) -> HoursRecorded:
        if self.date_to is not None and self.date_to < self.date_from:
            raise ValueError("date_to must not be before date_from")
        return self


class EngagementStarted(EventData):
    """A member started an engagement in an organisation and field."""

    TYPE: ClassVar[str] = "de.engagiert.engagement.started.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_ENGAGEMENT

    member_id: EntityId
    municipality: Ags
    engagement: Engagement


class EngagementEnded(EventData):
    """A member's engagement ended."""

    TYPE: ClassVar[str] = "de.engagiert.engagement.ended.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_ENGAGEMENT

    member_id: EntityId
    municipality: Ags
    engagement_id: EntityId
    until: date

"""Settings of the events service, created once."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from engagiert.shared.settings import ServiceSettings


class EventsSettings(ServiceSettings):
    """Settings of the events service: ``EVENTS_*`` variables, shared ones also unprefixed."""

    model_config = SettingsConfigDict(env_prefix="EVENTS_", extra="ignore")
    service_name: ClassVar[str] = "events"

    port: int = 8002
    public_base_url: str = Field(
        default="http://127.0.0.1:8002", description="base of the RSVP and card links in mails"
    )
    scheduler_seconds: float = Field(
        default=60, gt=0, description="pause between two rounds of timed work (cancellation mails, honour expiry)"
    )
    honour_renewal_days: int = Field(
        default=90, ge=0, le=730, description="days before a granted honour expires when its renewal is proposed"
    )
    rsvp_reminder_hours: float = Field(
        default=72, ge=0, description="hours before the RSVP deadline when those who have not answered are reminded"
    )

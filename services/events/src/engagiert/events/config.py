"""Settings of the events service, created once."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from engagiert.shared.settings import ServiceSettings


class EventsSettings(ServiceSettings):
    """Settings of the events service: ``EVENTS_*`` variables, shared ones also unprefixed."""

    model_config = SettingsConfigDict(env_prefix="EVENTS_", extra="ignore")
    service_name: ClassVar[str] = "events"

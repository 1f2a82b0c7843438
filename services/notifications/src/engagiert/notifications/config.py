"""Settings of the notifications service, created once."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from engagiert.shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service: ``NOTIFICATIONS_*`` variables, shared ones also unprefixed."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")
    service_name: ClassVar[str] = "notifications"

"""Settings of the notifications service, created once."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from engagiert.shared import topics
from engagiert.shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service: ``NOTIFICATIONS_*`` variables, shared ones also unprefixed."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")
    service_name: ClassVar[str] = "notifications"

    port: int = 8003
    public_base_url: str = Field(
        default="http://127.0.0.1:8003", description="base of the unsubscribe links in mails (this service, public)"
    )
    unsubscribe_link_days: int = Field(
        default=400, ge=30, le=3650, description="how long a mail's unsubscribe link works (RFC 8058: long)"
    )

    # The topics are settings only so that tests can run against throwaway topics.
    members_topic: str = topics.REGISTRY_MEMBERS
    requests_topic: str = topics.NOTIFICATIONS_REQUESTS

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = Field(default=False, description="upgrade with STARTTLS (required when on)")
    smtp_tls: bool = Field(default=False, description="implicit TLS (port 465 style)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_pool_size: int = Field(default=4, ge=1, le=64, description="open SMTP connections kept for reuse")
    smtp_rate_per_second: float = Field(default=0.0, ge=0, description="most messages per second; 0 = no limit")
    mail_from: str = "engagiert <no-reply@engagiert.local>"
    message_id_domain: str = "engagiert.local"

    max_attempts: int = Field(default=8, ge=1, le=100, description="SMTP attempts before a delivery fails")
    retry_base_seconds: float = Field(default=30.0, gt=0, description="first retry delay; doubles per attempt")
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0, description="a claimed delivery is re-tried after this")
    sender_poll_seconds: float = Field(default=1.0, gt=0)
    sender_batch: int = Field(default=1000, ge=1, le=5000, description="deliveries claimed at once")
    sender_chunk: int = Field(
        default=20, ge=1, le=1000, description="messages sent before their results are written (crash bound)"
    )
    unknown_member_grace_seconds: float = Field(
        default=900.0, ge=0, description="how long a request for an unknown member waits for its snapshot"
    )

    fault_sigkill_after_accepted: int = Field(
        default=0,
        ge=0,
        description="TESTS ONLY: SIGKILL this process right after the SMTP server accepted the Nth message, "
        "before its result is written; 0 = off",
    )

    @model_validator(mode="after")
    def _no_fault_injection_in_production(self) -> NotificationsSettings:
        if self.environment == "production" and self.fault_sigkill_after_accepted:
            raise ValueError("fault_sigkill_after_accepted is for tests only")
        return self

"""Settings of the events service, created once."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from engagiert.shared import topics
from engagiert.shared.settings import ServiceSettings
from engagiert.shared.signing import CardKeyRing, b64url

LOCAL_CARD_KEYS = "local:" + b64url(hashlib.sha256(b"engagiert-local-card-key-never-in-production").digest())
"""The well-known key that signs card codes locally; production refuses it."""


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
    members_topic: str = Field(
        default=topics.REGISTRY_MEMBERS,
        description="the registry's member facts; benchmarks point it at a throwaway topic",
    )
    engagement_topic: str = Field(
        default=topics.REGISTRY_ENGAGEMENT,
        description="the registry's engagement facts; benchmarks point it at a throwaway topic",
    )
    figures_cache_seconds: float = Field(
        default=300,
        ge=0,
        description="how long GET /v1/network/figures keeps a period's answer (0: computed on every call)",
    )
    card_signing_keys: SecretStr = Field(
        default=SecretStr(LOCAL_CARD_KEYS),
        description="Ed25519 key ring of card codes, 'kid:<base64url 32-byte seed>,...' (the first signs; "
        "keep old keys: their cards verify and their public keys stay in GET /v1/honours/keys)",
    )

    def card_keys(self) -> CardKeyRing:
        """Return the card codes' key ring."""
        return CardKeyRing.from_settings(self.card_signing_keys.get_secret_value())

    @model_validator(mode="after")
    def _enforce_own_card_keys_in_production(self) -> EventsSettings:
        self.card_keys()  # every entry is a 32-byte Ed25519 seed, or the service does not start
        if (
            self.environment == "production"
            and LOCAL_CARD_KEYS.split(":")[1] in self.card_signing_keys.get_secret_value()
        ):
            raise ValueError("set EVENTS_CARD_SIGNING_KEYS to keys of your own in production")
        return self

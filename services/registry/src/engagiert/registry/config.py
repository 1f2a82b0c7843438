"""Settings of the registry service, created once."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from engagiert.shared import topics
from engagiert.shared.settings import ServiceSettings, require_strong_secret

LOCAL_ERASURE_SALT = "engagiert-local-erasure-salt-never-in-production"


class RegistrySettings(ServiceSettings):
    """Settings of the registry service: ``REGISTRY_*`` variables, shared ones also unprefixed."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")
    service_name: ClassVar[str] = "registry"

    inbound_topic: str = Field(
        default=topics.REGISTRY_INBOUND,
        description="the operators' channel for inbound commands (only the Kafka super user, and notifications "
        "for unsubscribes, write it); "
        "tests and benchmarks point it at a throwaway topic",
    )
    systems_pattern: str = Field(
        default=topics.SYSTEM_INBOUND_PATTERN,
        description="the connected systems' inbound topics (one per system, consumed by this pattern)",
    )
    confirmations_topic: str = Field(
        default=topics.REGISTRY_ERASURE_CONFIRMATIONS,
        description="the topic of erasure confirmations (only events and notifications may write it)",
    )
    inbound_max_records: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="the most inbound commands applied in one batch (the other topics take consumer_max_records): "
        "an hours batch reads and writes each member's running figures once, so larger batches of reports cost "
        "less per report (2,000 against 500: 1,452 against 1,071 reports/s in the registry's benchmark)",
    )
    kafka_metadata_max_age_ms: int = Field(
        default=10_000, ge=1000, description="a newly connected system's topic is consumed at most this much later"
    )
    purge_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="how often the registry looks for erasures waiting for the inbound purge",
    )
    purge_every_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="purge erased people's inbound dead letters this often, also without an erasure",
    )
    purge_inbound_records: bool = Field(
        default=True,
        description="delete applied inbound commands and rewrite inbound dead letters after an erasure; false only "
        "for a registry that shares its inbound topics with the installation's registry (tests on a shared stack): "
        "it then leaves those topics alone and their records wait for retention",
    )
    figures_cache_seconds: float = Field(
        default=300,
        ge=0,
        description="how long GET /v1/network/figures keeps a period's answer (0: computed on every call)",
    )
    erasure_salt: SecretStr = Field(
        default=SecretStr(LOCAL_ERASURE_SALT),
        description="salts the hashes of erased people's identity keys (32+ random bytes in production; "
        "changing it forgets who was erased)",
    )

    @model_validator(mode="after")
    def _enforce_erasure_salt_in_production(self) -> RegistrySettings:
        if self.environment != "production":
            return self
        if self.erasure_salt.get_secret_value() == LOCAL_ERASURE_SALT:
            raise ValueError("set REGISTRY_ERASURE_SALT to 32+ random bytes of your own in production")
        require_strong_secret(self.erasure_salt, name="REGISTRY_ERASURE_SALT")
        return self

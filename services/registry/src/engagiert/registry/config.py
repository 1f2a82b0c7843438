"""Settings of the registry service, created once."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from engagiert.shared import topics
from engagiert.shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    """Settings of the registry service: ``REGISTRY_*`` variables, shared ones also unprefixed."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")
    service_name: ClassVar[str] = "registry"

    inbound_topic: str = Field(
        default=topics.REGISTRY_INBOUND,
        description="the topic of inbound commands; tests and benchmarks point it at a throwaway topic",
    )

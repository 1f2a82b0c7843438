"""Settings of the console, created once: ``CONSOLE_*`` variables (``ENVIRONMENT``, ``LOG_LEVEL`` also bare)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_CLIENT_SECRET = "engagiert-console-local-secret"  # noqa: S105 - the local realm's well-known secret
"""The secret of the local Keycloak realm's console client; production refuses it."""


class ConsoleSettings(BaseSettings):
    """Settings of the console; it owns no database and no topic, only the addresses of what it calls."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    environment: Literal["local", "test", "staging", "production"] = Field(
        default="local", validation_alias=AliasChoices("CONSOLE_ENVIRONMENT", "ENVIRONMENT")
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("CONSOLE_LOG_LEVEL", "LOG_LEVEL"))
    host: str = "127.0.0.1"
    port: int = 8000

    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="the console's address as browsers see it (OIDC redirects)"
    )
    registry_url: str = "http://127.0.0.1:8001"
    events_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    service_timeout_seconds: float = Field(default=30.0, gt=0)

    oidc_issuer: str = Field(
        default="http://127.0.0.1:8080/realms/engagiert", description="discovery: <issuer>/.well-known/..."
    )
    oidc_client_id: str = "engagiert-console"
    oidc_client_secret: SecretStr = SecretStr(LOCAL_CLIENT_SECRET)
    oidc_scope: str = "openid profile email"
    oidc_refresh_margin_seconds: int = Field(
        default=30, ge=0, description="refresh the access token when it expires within this many seconds"
    )

    session_idle_minutes: int = Field(default=30, ge=1, description="a session unused this long ends")
    session_max_hours: int = Field(default=10, ge=1, description="a session ends this long after sign-in")
    cookie_secure: bool | None = Field(default=None, description="default: true in production")

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> ConsoleSettings:
        if self.environment == "production" and self.oidc_client_secret.get_secret_value() == LOCAL_CLIENT_SECRET:
            raise ValueError("set CONSOLE_OIDC_CLIENT_SECRET (from a Secret) in production")
        return self

    @property
    def secure_cookies(self) -> bool:
        """Return whether cookies carry the Secure flag (always in production, unless set)."""
        return self.environment == "production" if self.cookie_secure is None else self.cookie_secure

    @property
    def discovery_url(self) -> str:
        """Return the provider's OpenID discovery document."""
        return self.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"

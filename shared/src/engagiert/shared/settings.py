"""Defines the settings base every service extends: environment variables with a per-service prefix.

A service's settings read ``<PREFIX>_<FIELD>`` (``REGISTRY_PORT``). The infrastructure settings
every service shares (``KAFKA_BOOTSTRAP_SERVERS``, ``MONGODB_URL``, ``ENVIRONMENT``, the
``AUTH_*`` and ``KAFKA_*`` security settings) are also read without the prefix, so one
environment serves the whole platform; the prefixed variable wins.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

LOCAL_AUTH_KEY = "engagiert-local-development-key-never-in-production"
"""The well-known key that signs local tokens; production refuses it."""
LOCAL_MEMBER_KEYS_TOKEN = "engagiert-local-member-keys-token-never-in-production"  # noqa: S105 - well-known local value
"""The well-known token that fetches members' keys locally; production refuses it."""

Environment = Literal["local", "test", "staging", "production"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class _UnprefixedSharedEnv(EnvSettingsSource):
    """Reads the shared infrastructure fields from unprefixed variables."""

    def __init__(self, settings_cls: type[BaseSettings], shared: frozenset[str]) -> None:
        super().__init__(settings_cls, env_prefix="", case_sensitive=False)
        self._shared = shared

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in self._shared:
            return None, field_name, False
        return super().get_field_value(field, field_name)


MIN_SECRET_BYTES = 32
"""The shortest link or signing secret production accepts (256 bits, the HMAC-SHA256 key size)."""


def require_strong_secret(secret: SecretStr | str, *, name: str) -> None:
    """Raise ValueError when ``secret`` is shorter than :data:`MIN_SECRET_BYTES` bytes (UTF-8)."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"{name} must be at least {MIN_SECRET_BYTES} bytes in production (e.g. openssl rand -hex 32)")


class ServiceSettings(BaseSettings):
    """Settings every service has; subclass it with ``env_prefix`` set to ``<SERVICE>_``."""

    SHARED_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "environment",
            "log_level",
            "kafka_bootstrap_servers",
            "kafka_security_protocol",
            "kafka_sasl_mechanism",
            "kafka_sasl_username",
            "kafka_sasl_password",
            "kafka_ssl_cafile",
            "mongodb_url",
            "auth_jwks_url",
            "auth_local_key",
            "auth_issuer",
            "auth_audience",
            "auth_local_issuer",
            "auth_jwks_lifespan_seconds",
            "auth_jwks_cooldown_seconds",
            "auth_jwks_timeout_seconds",
            "link_secret",
            "link_secrets",
            "public_base_url",
            "member_keys_url",
            "member_keys_token",
            "topic_partitions",
            "trusted_proxies",
        }
    )

    service_name: ClassVar[str] = "service"

    environment: Environment = "local"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_metadata_max_age_ms: int = Field(
        default=300_000, ge=1000, description="how often clients refresh metadata (a pattern finds new topics so)"
    )
    consumer_group: str | None = Field(default=None, description="default: engagiert-<service>")
    consumer_max_records: int = Field(default=500, ge=1, le=10_000)
    consumer_max_attempts: int = Field(default=5, ge=1, le=100, description="before the DLQ")
    consumer_retry_backoff_seconds: float = Field(default=0.2, gt=0)
    graceful_timeout_seconds: float = Field(default=20.0, gt=0)
    topic_partitions: int = Field(default=3, ge=1)

    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str | None = Field(default=None, description="default: engagiert_<service>")

    # Sign-in: tokens of the OIDC provider (Keycloak) are verified through its JWKS; outside
    # production also tokens signed with the local key (HS256), which production refuses.
    auth_jwks_url: str | None = Field(default=None, description="the OIDC provider's JWKS URL")
    auth_issuer: str | None = Field(default=None, description="the OIDC provider's issuer; needed with the JWKS URL")
    auth_audience: str = "engagiert"
    auth_jwks_lifespan_seconds: float = Field(default=300.0, gt=0, description="the key set is fetched again after")
    auth_jwks_cooldown_seconds: float = Field(default=10.0, ge=0, description="at most one fetch per unknown kid per")
    auth_jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    auth_local_key: SecretStr | None = SecretStr(LOCAL_AUTH_KEY)
    auth_local_issuer: str = "engagiert-local"

    link_secret: SecretStr = SecretStr("engagiert-local-link-secret-never-in-production")
    link_secrets: SecretStr = Field(
        default=SecretStr(""),
        description="links' key ring 'kid:secret,kid:secret' (the first signs); LINK_SECRET verifies old links",
    )
    public_base_url: str = "http://127.0.0.1:8000"

    # Crypto-shredding (engagiert.shared.shredding): the registry hands members' keys to the
    # services that present this token; they find the registry at this address.
    member_keys_url: str = Field(default="http://127.0.0.1:8001", description="the registry's base URL (member keys)")
    member_keys_token: SecretStr = Field(
        default=SecretStr(LOCAL_MEMBER_KEYS_TOKEN),
        description="the bearer token that fetches members' keys from the registry (32+ random bytes in production)",
    )

    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    consumer_stall_seconds: float = Field(
        default=300.0, gt=0, description="readiness turns unready when a consumer has work and no progress this long"
    )

    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="request body limit (a route may set its own)"
    )
    public_rate_limit: str = Field(default="60/minute", description="per client on each public route (limits syntax)")
    trusted_proxies: str = Field(
        default="", description="comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read prefixed variables first, then the shared unprefixed ones."""
        shared = _UnprefixedSharedEnv(settings_cls, cls.SHARED_FIELDS)
        return (init_settings, env_settings, shared, dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _enforce_no_local_secrets_in_production(self) -> ServiceSettings:
        if self.auth_jwks_url and not self.auth_issuer:
            raise ValueError("AUTH_JWKS_URL needs AUTH_ISSUER: the provider's issuer, checked in every token")
        if self.environment != "production":
            return self
        key = self.auth_local_key.get_secret_value() if self.auth_local_key else None
        if key == LOCAL_AUTH_KEY:
            raise ValueError(
                "the local token key must not be used in production: set AUTH_JWKS_URL and AUTH_LOCAL_KEY='' "
            )
        if key:
            raise ValueError("production refuses locally signed (HS256) tokens: set AUTH_LOCAL_KEY=''")
        if not self.auth_jwks_url:
            raise ValueError("production needs AUTH_JWKS_URL and AUTH_ISSUER (OIDC) to verify tokens")
        if "never-in-production" in self.link_secret.get_secret_value():
            raise ValueError("set LINK_SECRET to a secret of your own in production")
        require_strong_secret(self.link_secret, name="LINK_SECRET")
        if self.member_keys_token.get_secret_value() == LOCAL_MEMBER_KEYS_TOKEN:
            raise ValueError("set MEMBER_KEYS_TOKEN to a secret of your own in production")
        require_strong_secret(self.member_keys_token, name="MEMBER_KEYS_TOKEN")
        from engagiert.shared.signing import parse_ring

        for kid, secret in parse_ring(self.link_secrets.get_secret_value()):
            require_strong_secret(secret, name=f"LINK_SECRETS entry {kid}")
        return self

    def member_keys(self) -> Any:
        """Return a :class:`~engagiert.shared.shredding.MemberKeys` that fetches keys from the registry."""
        from engagiert.shared.shredding import MemberKeys

        return MemberKeys(url=self.member_keys_url, token=self.member_keys_token.get_secret_value())

    def link_keys(self) -> Any:
        """Return the links' :class:`~engagiert.shared.signing.LinkKeyRing` (``LINK_SECRETS``, then ``LINK_SECRET``)."""
        from engagiert.shared.signing import LinkKeyRing

        return LinkKeyRing.from_settings(
            self.link_secrets.get_secret_value(), legacy_secret=self.link_secret.get_secret_value()
        )

    @property
    def group_id(self) -> str:
        """Return the Kafka consumer group of this service."""
        return self.consumer_group or f"engagiert-{self.service_name}"

    @property
    def database_name(self) -> str:
        """Return the MongoDB database of this service."""
        return self.mongodb_database or f"engagiert_{self.service_name}"

    @property
    def source(self) -> str:
        """Return the CloudEvents ``source`` of this service."""
        return f"/engagiert/{self.service_name}"

    def kafka_security(self) -> Any:
        """Return the FastStream security object for the configured SASL/TLS settings, or None."""
        return faststream_security(self)

    def kafka_client_options(self) -> dict[str, Any]:
        """Return aiokafka's keyword arguments for the configured SASL/TLS settings (empty for plaintext)."""
        return aiokafka_options(self)


class KafkaClientSettings(BaseSettings):
    """Reads a Kafka client's settings (unprefixed ``KAFKA_*``) for tools and tests that have no service settings."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None


class _KafkaAccess(Protocol):
    kafka_security_protocol: SecurityProtocol
    kafka_sasl_mechanism: SaslMechanism | None
    kafka_sasl_username: str | None
    kafka_sasl_password: SecretStr | None
    kafka_ssl_cafile: str | None


def _ssl_context(access: _KafkaAccess) -> Any:
    if access.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(cafile=access.kafka_ssl_cafile)


def _password(access: _KafkaAccess) -> str:
    return access.kafka_sasl_password.get_secret_value() if access.kafka_sasl_password else ""


def aiokafka_options(access: _KafkaAccess | None = None) -> dict[str, Any]:
    """Return aiokafka's SASL/TLS keyword arguments (``security_protocol``, ``sasl_*``, ``ssl_context``).

    Args:
        access: settings with the ``kafka_*`` security fields; default: :class:`KafkaClientSettings`
            read from the environment now.
    """
    access = access or KafkaClientSettings()
    protocol = access.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if (ctx := _ssl_context(access)) is not None:
        options["ssl_context"] = ctx
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = access.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = access.kafka_sasl_username or ""
        options["sasl_plain_password"] = _password(access)
    return options


def faststream_security(access: _KafkaAccess | None = None) -> Any:
    """Return FastStream's security object for a ``KafkaBroker(security=...)`` (None for plaintext)."""
    from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

    access = access or KafkaClientSettings()
    protocol = access.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ssl_context = _ssl_context(access)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=ssl_context)
    classes = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    cls = classes[access.kafka_sasl_mechanism or "PLAIN"]
    return cls(
        username=access.kafka_sasl_username or "",
        password=_password(access),
        ssl_context=ssl_context,
        use_ssl=protocol == "SASL_SSL",
    )


def confluent_config(access: KafkaClientSettings | None = None) -> dict[str, str]:
    """Return librdkafka's configuration (confluent-kafka's admin client) for the same settings."""
    access = access or KafkaClientSettings()
    config = {
        "bootstrap.servers": access.kafka_bootstrap_servers,
        "security.protocol": access.kafka_security_protocol.lower(),
    }
    if access.kafka_security_protocol.startswith("SASL_"):
        config["sasl.mechanism"] = access.kafka_sasl_mechanism or "PLAIN"
        config["sasl.username"] = access.kafka_sasl_username or ""
        config["sasl.password"] = _password(access)
    if access.kafka_ssl_cafile:
        config["ssl.ca.location"] = access.kafka_ssl_cafile
    return config


def java_client_properties(access: KafkaClientSettings | None = None) -> dict[str, str]:
    """Return the Java clients' properties (Kafka's own tools: ``--command-config``) for the same settings."""
    access = access or KafkaClientSettings()
    props = {"bootstrap.servers": access.kafka_bootstrap_servers, "security.protocol": access.kafka_security_protocol}
    if access.kafka_security_protocol.startswith("SASL_"):
        mechanism = access.kafka_sasl_mechanism or "PLAIN"
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        user, password = (access.kafka_sasl_username or "").replace('"', '\\"'), _password(access).replace('"', '\\"')
        props["sasl.mechanism"] = mechanism
        props["sasl.jaas.config"] = f'{module} required username="{user}" password="{password}";'
    if access.kafka_ssl_cafile:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = access.kafka_ssl_cafile
    return props

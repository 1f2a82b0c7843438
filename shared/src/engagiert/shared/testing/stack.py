"""Finds or starts the real stack the integration tests run against.

In order: ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URL`` from the environment when set (with
``KEYCLOAK_ISSUER`` for the local Keycloak); the testcontainers images when a Docker engine answers
(no Keycloak); otherwise the native stack of ``deploy/local/stack.sh`` (Kafka from Maven Central
jars, FerretDB, Mailpit, Keycloak).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[5]


KAFKA_CLIENT_VARIABLES = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
)
"""The Kafka client settings besides the bootstrap servers (``deploy/local/stack.sh env`` prints them)."""


@dataclass(frozen=True)
class StackEndpoints:
    """Where the test stack's parts listen."""

    kafka_bootstrap_servers: str
    mongodb_url: str
    smtp_host: str
    smtp_port: int
    mailpit_api_url: str
    origin: str
    keycloak_issuer: str | None = None
    """The local Keycloak's realm ``engagiert`` (its issuer), when the stack has one."""

    @property
    def keycloak_jwks_url(self) -> str | None:
        """Return the JWKS URL of the local Keycloak realm, or None."""
        return f"{self.keycloak_issuer}/protocol/openid-connect/certs" if self.keycloak_issuer else None

    def env(self) -> dict[str, str]:
        """Return the environment a service process needs to use this stack (Keycloak's JWKS included)."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "MONGODB_URL": self.mongodb_url,
            "NOTIFICATIONS_SMTP_HOST": self.smtp_host,
            "NOTIFICATIONS_SMTP_PORT": str(self.smtp_port),
            "MAILPIT_API_URL": self.mailpit_api_url,
        }
        env.update({k: os.environ[k] for k in KAFKA_CLIENT_VARIABLES if k in os.environ})
        if self.keycloak_issuer and self.keycloak_jwks_url:
            env["AUTH_ISSUER"] = self.keycloak_issuer
            env["AUTH_JWKS_URL"] = self.keycloak_jwks_url
        return env


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0  # noqa: S607
    except (OSError, subprocess.TimeoutExpired):
        return False


def _from_env() -> StackEndpoints | None:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URL")
    if not (kafka and mongo):
        return None
    return StackEndpoints(
        kafka_bootstrap_servers=kafka,
        mongodb_url=mongo,
        smtp_host=os.environ.get("SMTP_HOST", "127.0.0.1"),
        smtp_port=int(os.environ.get("SMTP_PORT", "1025")),
        mailpit_api_url=os.environ.get("MAILPIT_API_URL", "http://127.0.0.1:8025"),
        origin="environment",
        keycloak_issuer=os.environ.get("KEYCLOAK_ISSUER") or None,
    )


def _from_testcontainers(stack: ExitStack) -> StackEndpoints:  # pragma: no cover - needs Docker
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer
    from testcontainers.core.container import DockerContainer

    kafka = stack.enter_context(KafkaContainer().with_kraft())
    mongo = stack.enter_context(MongoDbContainer("mongo:8"))
    mail = stack.enter_context(DockerContainer("axllent/mailpit:v1.27").with_exposed_ports(1025, 8025))
    host = mail.get_container_host_ip()
    return StackEndpoints(
        kafka_bootstrap_servers=kafka.get_bootstrap_server(),
        mongodb_url=mongo.get_connection_url(),
        smtp_host=host,
        smtp_port=int(mail.get_exposed_port(1025)),
        mailpit_api_url=f"http://{host}:{mail.get_exposed_port(8025)}",
        origin="testcontainers",
    )


def _from_native_stack() -> StackEndpoints:
    script = REPO_ROOT / "deploy" / "local" / "stack.sh"
    subprocess.run(["bash", str(script), "up"], check=True, cwd=REPO_ROOT)  # noqa: S607
    out = subprocess.run(["bash", str(script), "env"], check=True, capture_output=True, text=True, cwd=REPO_ROOT)  # noqa: S607
    values: dict[str, str] = {}
    for line in out.stdout.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            k, v = line.split("=", 1)
            values[k] = v.strip("'\"")
    # The stack's broker takes SASL clients only: every client of the tests reads these (aiokafka_options).
    for key in KAFKA_CLIENT_VARIABLES:
        if key in values:
            os.environ.setdefault(key, values[key])
    return StackEndpoints(
        kafka_bootstrap_servers=values["KAFKA_BOOTSTRAP_SERVERS"],
        mongodb_url=values["MONGODB_URL"],
        smtp_host=values.get("SMTP_HOST", "127.0.0.1"),
        smtp_port=int(values.get("SMTP_PORT", "1025")),
        mailpit_api_url=values.get("MAILPIT_API_URL", "http://127.0.0.1:8025"),
        origin="native",
        keycloak_issuer=values.get("KEYCLOAK_ISSUER") or None,
    )


def resolve_stack(stack: ExitStack) -> StackEndpoints:
    """Return the endpoints of a running stack, starting one when none is given."""
    found = _from_env()
    if found is not None:
        return found
    if _docker_answers():
        return _from_testcontainers(stack)
    return _from_native_stack()

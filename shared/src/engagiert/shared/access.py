"""Decides who may read and write which topic: Kafka ACLs and SCRAM users, through the broker's admin API.

The broker authenticates every client (SASL/SCRAM-SHA-512) and its StandardAuthorizer allows only
what an ACL allows (``allow.everyone.if.no.acl.found=false``). This module holds the ACLs of the
platform's own services (:func:`service_grants`) and of a connected system
(:func:`system_grants`), and applies them with confluent-kafka's admin client, the Python client
that speaks CreateAcls, DeleteAcls and AlterUserScramCredentials. Every operation is idempotent:
the broker keeps one copy of an ACL however often it is created. It runs with the operator's
credentials (a super user); a service's own principal may not change ACLs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from engagiert.shared import topics
from engagiert.shared.settings import KafkaClientSettings, confluent_config
from engagiert.shared.topics import dlq

SCRAM_ITERATIONS = 8192
"""PBKDF2 iterations of the SCRAM credentials the platform creates (Kafka's minimum is 4096)."""
SERVICE_USERS = ("registry", "events", "notifications")
"""The Kafka principals of the services (User:<name>); the console uses no Kafka."""
SYSTEM_USER_PREFIX = "system-"
"""A connected system's Kafka user is ``system-<name>``."""

Operation = Literal["READ", "WRITE", "DESCRIBE", "DELETE"]


@dataclass(frozen=True, kw_only=True)
class Grant:
    """One ALLOW ACL: a principal may do ``operation`` on a topic or consumer group (by name or prefix)."""

    user: str
    resource: Literal["topic", "group"]
    name: str
    operation: Operation
    prefixed: bool = False

    def describe(self) -> str:
        """Return the ACL in one line, as an operator reads it."""
        kind = "prefix" if self.prefixed else "literal"
        return f"User:{self.user} {self.operation} {self.resource} {self.name} ({kind})"


def _reads(user: str, *names: str) -> list[Grant]:
    return [Grant(user=user, resource="topic", name=n, operation="READ") for n in names]


def _writes(user: str, *names: str) -> list[Grant]:
    return [Grant(user=user, resource="topic", name=n, operation="WRITE") for n in names]


def _groups(user: str, prefix: str) -> list[Grant]:
    return [Grant(user=user, resource="group", name=prefix, operation="READ", prefixed=True)]


def service_grants(*, group_prefix: str = "engagiert-", users: Mapping[str, str] | None = None) -> list[Grant]:
    """Return the ACLs of the three services: each reads and writes its topics and its groups only.

    A consumed topic's dead-letter topic is written by its consumers. READ and WRITE imply
    DESCRIBE (a group's READ also lets its member fetch the group's offsets). The registry reads
    every connected system's inbound topic by prefix; the DLQs of those topics it may write are
    granted per system (:func:`system_grants`). Its erasure purge (``engagiert.registry.purge``)
    deletes applied inbound commands and rewrites inbound dead letters: DELETE on the prefix
    ``registry.inbound.`` (the operators' channel, every system's topic and their DLQs) and READ
    on them (the same prefix covers the DLQs).

    Args:
        group_prefix: the services' consumer groups are ``<prefix><service>...``.
        users: the Kafka user of each service (default: the service's name).
    """
    user = {name: (users or {}).get(name, name) for name in SERVICE_USERS}
    registry = [
        *_writes(user["registry"], topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT),
        *_reads(user["registry"], topics.REGISTRY_INBOUND, topics.REGISTRY_ERASURE_CONFIRMATIONS),
        Grant(
            user=user["registry"], resource="topic", name=topics.SYSTEM_INBOUND_PREFIX, operation="READ", prefixed=True
        ),
        *_writes(user["registry"], dlq(topics.REGISTRY_INBOUND), dlq(topics.REGISTRY_ERASURE_CONFIRMATIONS)),
        Grant(
            user=user["registry"],
            resource="topic",
            name=topics.SYSTEM_INBOUND_PREFIX,
            operation="DELETE",
            prefixed=True,
        ),
        *_groups(user["registry"], f"{group_prefix}registry"),
    ]
    events = [
        *_reads(user["events"], topics.REGISTRY_MEMBERS, topics.REGISTRY_ENGAGEMENT),
        *_writes(
            user["events"],
            topics.EVENTS_RECOGNITION,
            topics.NOTIFICATIONS_REQUESTS,
            topics.REGISTRY_ERASURE_CONFIRMATIONS,
            dlq(topics.REGISTRY_MEMBERS),
            dlq(topics.REGISTRY_ENGAGEMENT),
        ),
        *_groups(user["events"], f"{group_prefix}events"),
    ]
    notifications = [
        *_reads(user["notifications"], topics.REGISTRY_MEMBERS, topics.NOTIFICATIONS_REQUESTS),
        *_writes(
            user["notifications"],
            topics.NOTIFICATIONS_DELIVERIES,
            topics.REGISTRY_ERASURE_CONFIRMATIONS,
            topics.REGISTRY_INBOUND,  # a member's unsubscribe (consent.withdraw), on the operators' channel
            dlq(topics.REGISTRY_MEMBERS),
            dlq(topics.NOTIFICATIONS_REQUESTS),
        ),
        *_groups(user["notifications"], f"{group_prefix}notifications"),
    ]
    return [*registry, *events, *notifications]


def system_user(system: str) -> str:
    """Return the Kafka user of the connected system ``system``."""
    topics.system_inbound_topic(system)  # validates the name
    return f"{SYSTEM_USER_PREFIX}{system}"


def system_grants(system: str, *, registry_user: str = "registry") -> list[Grant]:
    """Return the ACLs of a connected system: it writes its inbound topic and reads its own dead letters.

    The registry gets the right to write that topic's dead-letter topic (it reads the topic by prefix).
    """
    topic = topics.system_inbound_topic(system)
    user = system_user(system)
    return [*_writes(user, topic), *_reads(user, dlq(topic)), *_writes(registry_user, dlq(topic))]


def new_secret() -> str:
    """Return a fresh SCRAM secret (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class KafkaAccess:
    """Applies ACLs, SCRAM users and topics with confluent-kafka's admin client (blocking calls)."""

    def __init__(self, settings: KafkaClientSettings | None = None, *, timeout: float = 30.0) -> None:
        from confluent_kafka.admin import AdminClient

        self.settings = settings or KafkaClientSettings()
        self.timeout = timeout
        self.admin = AdminClient({**confluent_config(self.settings), "client.id": "engagiert-access"})

    def _wait(self, futures: Iterable[Any]) -> None:
        for future in futures:
            future.result(timeout=self.timeout)

    @staticmethod
    def _binding(grant: Grant, *, as_filter: bool = False) -> Any:
        from confluent_kafka.admin import (
            AclBinding,
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        return (AclBindingFilter if as_filter else AclBinding)(
            ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
            grant.name,
            ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
            f"User:{grant.user}",
            "*",
            AclOperation[grant.operation],
            AclPermissionType.ALLOW,
        )

    def grant(self, grants: Sequence[Grant]) -> None:
        """Create the ALLOW ACLs ``grants`` (existing ones stay as they are)."""
        if grants:
            self._wait(self.admin.create_acls([self._binding(g) for g in grants]).values())

    def revoke(self, grants: Sequence[Grant]) -> None:
        """Delete exactly the ACLs ``grants`` (absent ones are no error)."""
        if grants:
            self._wait(self.admin.delete_acls([self._binding(g, as_filter=True) for g in grants]).values())

    def acls_of(self, user: str) -> list[str]:
        """Return the ACLs the broker holds for ``User:<user>``, one line each."""
        from confluent_kafka.admin import (
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        found = self.admin.describe_acls(
            AclBindingFilter(
                ResourceType.ANY,
                None,  # type: ignore[arg-type]  # None matches any name (the stub says str)
                ResourcePatternType.ANY,
                f"User:{user}",
                None,  # type: ignore[arg-type]  # any host
                AclOperation.ANY,
                AclPermissionType.ANY,
            )
        ).result(timeout=self.timeout)
        lines = []
        for b in found:
            pattern = b.resource_pattern_type.name.lower()
            lines.append(f"{b.principal} {b.operation.name} {b.restype.name.lower()} {b.name} ({pattern})")
        return sorted(lines)

    def set_scram_user(self, user: str, secret: str) -> None:
        """Create or replace ``user``'s SCRAM-SHA-512 credential."""
        from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(user, info, secret.encode())
        self._wait(self.admin.alter_user_scram_credentials([upsert]).values())

    def delete_scram_user(self, user: str) -> bool:
        """Delete ``user``'s SCRAM-SHA-512 credential; return False when it had none."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import ScramMechanism, UserScramCredentialDeletion

        try:
            deletion = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
            self._wait(self.admin.alter_user_scram_credentials([deletion]).values())
        except KafkaException as exc:
            if "RESOURCE_NOT_FOUND" in str(exc) or "not found" in str(exc).lower():
                return False
            raise
        return True

    def ensure_topics(self, specs: Sequence[tuple[str, int, dict[str, str]]], *, replication: int = 1) -> list[str]:
        """Create the topics ``(name, partitions, configs)`` that do not exist; return those created."""
        from confluent_kafka.admin import NewTopic

        existing = set(self.admin.list_topics(timeout=self.timeout).topics)
        wanted = [NewTopic(n, p, replication, config=c) for n, p, c in specs if n not in existing]
        if wanted:
            self._wait(self.admin.create_topics(wanted, operation_timeout=self.timeout).values())
        return [t.topic for t in wanted]

"""Names every Kafka topic of the platform in one place."""

from __future__ import annotations

REGISTRY_MEMBERS = "registry.members.v1"
"""Facts about members: registered, updated, status changed, consent changed, erased."""
REGISTRY_ENGAGEMENT = "registry.engagement.v1"
"""Facts about engagement: hours recorded, engagement started and ended."""
REGISTRY_INBOUND = "registry.inbound.v1"
"""Commands from other municipal systems (and erasure confirmations from our own services)."""
EVENTS_RECOGNITION = "events.recognition.v1"
"""Facts about recognition events, invitations, attendance and honours."""
NOTIFICATIONS_REQUESTS = "notifications.requests.v1"
"""Requests to write to a member (template, parameters, not-before)."""
NOTIFICATIONS_DELIVERIES = "notifications.deliveries.v1"
"""Facts about deliveries: sent, failed, suppressed."""

ALL_TOPICS: tuple[str, ...] = (
    REGISTRY_MEMBERS,
    REGISTRY_ENGAGEMENT,
    REGISTRY_INBOUND,
    EVENTS_RECOGNITION,
    NOTIFICATIONS_REQUESTS,
    NOTIFICATIONS_DELIVERIES,
)

DLQ_SUFFIX = ".dlq"


def inbound_topics() -> list[str]:
    """Return the topics other systems write commands to: the registry consumes them and erasure purges them.

    Their records are written by systems outside the platform, in plaintext, so erasure cannot
    shred them with a key: the registry deletes them (and redacts their dead letters) instead.
    """
    return [REGISTRY_INBOUND]


def dlq(topic: str) -> str:
    """Return the dead-letter topic of ``topic``."""
    return topic + DLQ_SUFFIX


def all_topics_with_dlq() -> list[str]:
    """Return every topic followed by its dead-letter topic."""
    return [t for topic in ALL_TOPICS for t in (topic, dlq(topic))]

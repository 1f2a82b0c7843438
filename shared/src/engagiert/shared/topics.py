"""Names every Kafka topic of the platform in one place."""

from __future__ import annotations

import re

REGISTRY_MEMBERS = "registry.members.v1"
"""Facts about members: registered, updated, status changed, consent changed, erased."""
REGISTRY_ENGAGEMENT = "registry.engagement.v1"
"""Facts about engagement: hours recorded, engagement started and ended."""
REGISTRY_INBOUND = "registry.inbound.v1"
"""The operators' channel for inbound commands: only the Kafka super user (and notifications: unsubscribes) writes it.

Connected systems each write a topic of their own (:func:`system_inbound_topic`); the commands
on all of them follow the contracts of this topic."""
REGISTRY_ERASURE_CONFIRMATIONS = "registry.erasure-confirmations.v1"
"""Confirmations that a service erased a member; only events and notifications may write it."""
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
    REGISTRY_ERASURE_CONFIRMATIONS,
    EVENTS_RECOGNITION,
    NOTIFICATIONS_REQUESTS,
    NOTIFICATIONS_DELIVERIES,
)

DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    """Return the dead-letter topic of ``topic``."""
    return topic + DLQ_SUFFIX


def all_topics_with_dlq() -> list[str]:
    """Return every topic followed by its dead-letter topic."""
    return [t for topic in ALL_TOPICS for t in (topic, dlq(topic))]


SYSTEM_INBOUND_PREFIX = "registry.inbound."
SYSTEM_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
"""A connected system's name: lower-case letters, digits and inner hyphens (it names a topic and a user)."""
SYSTEM_INBOUND_PATTERN = r"^registry\.inbound\.([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)\.v1$"
"""Matches every connected system's inbound topic (not the operators' ``registry.inbound.v1``, not DLQs)."""


def system_inbound_topic(system: str) -> str:
    """Return the inbound topic of the connected system ``system`` (only it may write there)."""
    if not SYSTEM_NAME.match(system):
        raise ValueError("a system name is 1-64 lower-case letters, digits and inner hyphens")
    return f"{SYSTEM_INBOUND_PREFIX}{system}.v1"


def system_of_topic(topic: str) -> str | None:
    """Return the connected system whose inbound topic ``topic`` is, or None."""
    found = re.match(SYSTEM_INBOUND_PATTERN, topic)
    return found.group(1) if found else None

"""Test helpers shipped beside the code: a running-stack fixture, Kafka and store helpers, factories."""

from engagiert.shared.testing.kafka import (
    consume_until,
    create_test_topics,
    fresh_registry,
    only_test_systems,
    produce_records,
    skip_history,
)
from engagiert.shared.testing.service import ServiceProcess, app_client, free_port
from engagiert.shared.testing.stack import StackEndpoints, resolve_stack
from engagiert.shared.testing.tokens import auth_header, token_for
from engagiert.shared.testing.waiting import eventually

__all__ = [
    "ServiceProcess",
    "StackEndpoints",
    "app_client",
    "auth_header",
    "consume_until",
    "create_test_topics",
    "eventually",
    "free_port",
    "fresh_registry",
    "only_test_systems",
    "produce_records",
    "resolve_stack",
    "skip_history",
    "token_for",
]

"""Test helpers shipped beside the code: a running-stack fixture, Kafka and store helpers, factories."""

from engagiert.shared.testing.kafka import consume_until, create_test_topics, produce_records
from engagiert.shared.testing.stack import StackEndpoints, resolve_stack
from engagiert.shared.testing.tokens import token_for

__all__ = [
    "StackEndpoints",
    "consume_until",
    "create_test_topics",
    "produce_records",
    "resolve_stack",
    "token_for",
]

"""The Docker-host path of the stack fixture imports: testcontainers is a pinned test dependency."""

from __future__ import annotations


def test_the_testcontainers_modules_the_fixture_uses_import() -> None:
    """Import the three testcontainers classes the fixture starts on a host with Docker."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer
    from testcontainers.core.container import DockerContainer

    assert hasattr(KafkaContainer, "with_kraft")
    assert hasattr(MongoDbContainer, "get_connection_url")
    assert DockerContainer is not None

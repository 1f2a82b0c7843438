"""Creates the platform's topics and their dead-letter topics, idempotently.

``python -m engagiert.shared.admin create-topics [--partitions N] [--replication R]`` is what
the local stack and the Helm chart's pre-install Job run. SASL/TLS come from the same ``KAFKA_*``
variables the services read (see ``kafka_client_options``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engagiert.shared.topics import ALL_TOPICS, dlq

DLQ_RETENTION_MS = str(30 * 24 * 3600 * 1000)


def kafka_client_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return aiokafka's SASL/TLS keyword arguments from the ``KAFKA_*`` variables services read.

    Reads ``KAFKA_SECURITY_PROTOCOL`` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL),
    ``KAFKA_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), ``KAFKA_SASL_USERNAME``,
    ``KAFKA_SASL_PASSWORD`` and ``KAFKA_SSL_CAFILE``; empty for plaintext.
    """
    env = os.environ if env is None else env
    protocol = env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(cafile=env.get("KAFKA_SSL_CAFILE") or None)
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = env.get("KAFKA_SASL_MECHANISM") or "PLAIN"
        options["sasl_plain_username"] = env.get("KAFKA_SASL_USERNAME") or ""
        options["sasl_plain_password"] = env.get("KAFKA_SASL_PASSWORD") or ""
    return options


async def create_topics(
    *,
    bootstrap_servers: str,
    partitions: int = 3,
    replication: int = 1,
    retention_ms: int | None = None,
    topics: tuple[str, ...] = ALL_TOPICS,
) -> list[str]:
    """Create every topic in ``topics`` and its ``.dlq`` that does not exist; return those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="engagiert-admin", **kafka_client_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for topic in topics:
            if topic not in existing:
                configs = {"retention.ms": str(retention_ms)} if retention_ms else {}
                wanted.append(NewTopic(topic, partitions, replication, topic_configs=configs))
            if dlq(topic) not in existing:
                # One partition keeps a DLQ in failure order; 30 days is time enough to re-drive.
                wanted.append(NewTopic(dlq(topic), 1, replication, topic_configs={"retention.ms": DLQ_RETENTION_MS}))
        if wanted:
            await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    """Create the topics named in ``engagiert.shared.topics`` and their dead-letter topics."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.shared.admin")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-topics", help="create missing topics and DLQs")
    create.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    create.add_argument("--partitions", type=int, default=int(os.environ.get("TOPIC_PARTITIONS", "3")))
    create.add_argument("--replication", type=int, default=int(os.environ.get("TOPIC_REPLICATION", "1")))
    create.add_argument("--retention-ms", type=int, default=int(os.environ.get("TOPIC_RETENTION_MS", "0")) or None)
    args = parser.parse_args(argv)
    created = asyncio.run(
        create_topics(
            bootstrap_servers=args.bootstrap_servers,
            partitions=args.partitions,
            replication=args.replication,
            retention_ms=args.retention_ms,
        )
    )
    print(f"created {len(created)} topic(s): {', '.join(created) or 'none needed'}")


if __name__ == "__main__":
    main()

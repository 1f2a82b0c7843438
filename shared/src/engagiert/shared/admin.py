"""Creates the platform's topics and their dead-letter topics, and grants the services their ACLs, idempotently.

``python -m engagiert.shared.admin create-topics [--partitions N] [--replication R]`` and
``python -m engagiert.shared.admin grant-services`` are what the local stack and the Helm chart's
pre-install Job run (with the operator's Kafka credentials). SASL/TLS come from the same ``KAFKA_*``
variables the services read (see ``engagiert.shared.settings.aiokafka_options``).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engagiert.shared.settings import aiokafka_options
from engagiert.shared.topics import ALL_TOPICS, dlq

DLQ_RETENTION_MS = str(30 * 24 * 3600 * 1000)


async def create_topics(
    *,
    bootstrap_servers: str,
    partitions: int = 3,
    replication: int = 1,
    retention_ms: int | None = None,
    topics: tuple[str, ...] = ALL_TOPICS,
) -> list[str]:
    """Create every topic in ``topics`` and its ``.dlq`` that does not exist; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="engagiert-admin", **aiokafka_options())
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
    grant = sub.add_parser(
        "grant-services", help="create the ACLs of the services' principals (engagiert.shared.access)"
    )
    grant.add_argument("--group-prefix", default="engagiert-", help="the services' consumer groups start with this")
    grant.add_argument(
        "--user", action="append", default=[], metavar="SERVICE=USER", help="a service's Kafka user (default: its name)"
    )
    args = parser.parse_args(argv)
    if args.command == "grant-services":
        from engagiert.shared.access import KafkaAccess, service_grants

        users = dict(u.split("=", 1) for u in args.user)
        grants = service_grants(group_prefix=args.group_prefix, users=users)
        KafkaAccess().grant(grants)
        print(f"granted {len(grants)} ACL(s) to {', '.join(sorted({g.user for g in grants}))}")
        return
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

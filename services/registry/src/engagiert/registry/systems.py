"""Connects, revokes and lists the external systems that send commands to the registry.

Run with the operator's Kafka credentials (a super user: ``eval "$(deploy/local/stack.sh env)"``
locally) and the registry's store settings::

    python -m engagiert.registry.systems connect --name vereinsverwaltung-bielefeld \\
        --municipality 05711000 --may register-members --may report-hours [--json]
    python -m engagiert.registry.systems revoke --name vereinsverwaltung-bielefeld [--json]
    python -m engagiert.registry.systems list [--json]

``connect`` creates the system's inbound topic (and its dead-letter topic), a Kafka user with a
generated SCRAM-SHA-512 secret, the ACLs that let that user write its topic only (and read its
own dead letters), and records the grant in the registry's database; it prints what the system
needs, the secret once (the registry keeps none). Connecting a connected system again replaces
its grant and its secret. ``revoke`` deletes the user and its ACLs (the broker refuses its next
write) and marks the grant revoked (anything it wrote before is dead-lettered as ``not-authorised``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from engagiert.registry.config import RegistrySettings
from engagiert.registry.repository import Repository
from engagiert.registry.services.common import utc_now
from engagiert.registry.services.systems import PERMISSIONS, Systems, public_view
from engagiert.shared import topics
from engagiert.shared.access import KafkaAccess, new_secret, system_grants, system_user
from engagiert.shared.admin import DLQ_RETENTION_MS
from engagiert.shared.mongo import create_client
from engagiert.shared.settings import KafkaClientSettings


async def _with_systems(settings: RegistrySettings, work: Any) -> Any:
    client = create_client(settings.mongodb_url, app_name="engagiert-registry-systems")
    try:
        repo = Repository(client[settings.database_name])
        systems = Systems(repo=repo, source=settings.source, notify=lambda: None, clock=utc_now)
        return await work(systems)
    finally:
        await client.close()


def connect(
    *,
    name: str,
    municipalities: Sequence[str],
    permissions: Sequence[str],
    settings: RegistrySettings,
    kafka: KafkaClientSettings,
    partitions: int,
    public_bootstrap: str | None = None,
    registry_user: str = "registry",
) -> dict[str, Any]:
    """Connect (or re-connect) a system; return what it needs to send commands, its secret included."""
    topic = topics.system_inbound_topic(name)
    user = system_user(name)
    bad = sorted(set(permissions) - set(PERMISSIONS))
    if bad or not permissions:
        raise ValueError(f"--may takes one or more of: {', '.join(PERMISSIONS)}")

    async def check(systems: Systems) -> set[str]:
        return await systems.repo.existing_municipalities(list(municipalities))

    unknown = sorted(set(municipalities) - asyncio.run(_with_systems(settings, check)))
    if unknown or not municipalities:
        raise ValueError(
            f"unknown municipalities: {', '.join(unknown) or 'none given'} (create them in the registry first)"
        )
    access = KafkaAccess(kafka)
    access.ensure_topics([(topic, partitions, {}), (topics.dlq(topic), 1, {"retention.ms": DLQ_RETENTION_MS})])
    secret = new_secret()
    access.set_scram_user(user, secret)
    access.grant(system_grants(name, registry_user=registry_user))

    async def record(systems: Systems) -> dict[str, Any]:
        doc = await systems.record_grant(
            name=name, user=user, topic=topic, municipalities=municipalities, permissions=permissions
        )
        return public_view(doc)

    grant = asyncio.run(_with_systems(settings, record))
    return {
        **grant,
        "bootstrap_servers": public_bootstrap or kafka.kafka_bootstrap_servers,
        "security_protocol": kafka.kafka_security_protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": user,
        "sasl_password": secret,
        "dead_letter_topic": topics.dlq(topic),
    }


def revoke(*, name: str, settings: RegistrySettings, kafka: KafkaClientSettings) -> dict[str, Any]:
    """Revoke a system: delete its Kafka user and ACLs, mark its grant revoked; return the grant."""
    user = system_user(name)
    access = KafkaAccess(kafka)
    # The registry keeps the right to dead-letter what the system wrote before: only the system's ACLs go.
    access.revoke([g for g in system_grants(name) if g.user == user])
    had_user = access.delete_scram_user(user)

    async def mark(systems: Systems) -> dict[str, Any] | None:
        doc = await systems.revoke(name)
        return public_view(doc) if doc else None

    grant = asyncio.run(_with_systems(settings, mark))
    if grant is None and not had_user:
        raise ValueError(f"no connected system {name}")
    return grant or {"name": name, "user": user, "status": "revoked"}


def list_systems(*, settings: RegistrySettings) -> list[dict[str, Any]]:
    """Return every connected system's grant (revoked ones too)."""

    async def work(systems: Systems) -> list[dict[str, Any]]:
        return [public_view(d) for d in await systems.list()]

    result: list[dict[str, Any]] = asyncio.run(_with_systems(settings, work))
    return result


def _print_connected(info: dict[str, Any]) -> None:
    print(f"connected {info['name']} for {', '.join(info['municipalities'])}: may {', '.join(info['permissions'])}")
    print("give the system these settings (the secret is shown only now):")
    for key in ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password", "topic"):
        print(f"  {key:<18} {info[key]}")
    print(f"  {'dead letters':<18} {info['dead_letter_topic']} (readable by the system: what was refused and why)")


def main(argv: list[str] | None = None) -> int:
    """Run the operator command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.registry.systems", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    con = sub.add_parser("connect", help="connect a system (or re-connect it: new grant, new secret)")
    con.add_argument("--name", required=True, help="lower-case letters, digits and hyphens")
    con.add_argument("--municipality", action="append", default=[], help="an AGS it may act for (repeatable)")
    con.add_argument("--may", action="append", default=[], choices=PERMISSIONS, help="what it may do (repeatable)")
    con.add_argument("--partitions", type=int, default=int(os.environ.get("TOPIC_PARTITIONS", "3")))
    con.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_PUBLIC_BOOTSTRAP_SERVERS"),
        help="what the system connects to (default: KAFKA_PUBLIC_BOOTSTRAP_SERVERS, else KAFKA_BOOTSTRAP_SERVERS)",
    )
    con.add_argument(
        "--registry-user",
        default=os.environ.get("REGISTRY_KAFKA_USER", "registry"),
        help="the registry's Kafka user, allowed to dead-letter the system's commands (default: registry)",
    )
    con.add_argument("--json", action="store_true")
    rev = sub.add_parser("revoke", help="revoke a system: its user, its ACLs and its grant")
    rev.add_argument("--name", required=True)
    rev.add_argument("--json", action="store_true")
    lst = sub.add_parser("list", help="list the connected systems")
    lst.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = RegistrySettings()
    kafka = KafkaClientSettings()
    try:
        if args.command == "connect":
            info = connect(
                name=args.name,
                municipalities=args.municipality,
                permissions=args.may,
                settings=settings,
                kafka=kafka,
                partitions=args.partitions,
                public_bootstrap=args.bootstrap_servers,
                registry_user=args.registry_user,
            )
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                _print_connected(info)
        elif args.command == "revoke":
            info = revoke(name=args.name, settings=settings, kafka=kafka)
            print(json.dumps(info, indent=2) if args.json else f"revoked {args.name}: its Kafka user and ACLs are gone")
        else:
            found = list_systems(settings=settings)
            if args.json:
                print(json.dumps(found, indent=2))
            for s in [] if args.json else found:
                munis, perms = ",".join(s["municipalities"]), ",".join(s["permissions"])
                print(f"{s['name']:<32} {s['status']:<10} {munis:<20} {perms}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

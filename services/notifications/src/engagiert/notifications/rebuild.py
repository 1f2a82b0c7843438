"""Rebuilds the contacts read model by replaying ``registry.members.v1`` from the beginning.

Run with the service's environment (``NOTIFICATIONS_*``/``MONGODB_URL``/``KAFKA_BOOTSTRAP_SERVERS``)::

    python -m engagiert.notifications.rebuild            # clear the contacts, replay, print the counts
    python -m engagiert.notifications.rebuild --keep     # replay over what is there (no clearing)

The replay (:mod:`engagiert.shared.messaging.replay`) reads every partition from its earliest
offset up to the end it had when the run began, without a consumer group, and applies the
records with the service's own use case (revision-guarded, so it may run beside the service).
Snapshots are sealed with each member's key: the replay fetches keys from the registry
(``MEMBER_KEYS_URL``, ``MEMBER_KEYS_TOKEN``). An erased member's key is gone, so their snapshots
are skipped; their erasure fact writes the tombstone again (its confirmation carries the same
CloudEvent id as before). Deliveries, contents and branding are not touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.repository import CONTACTS, Repository
from engagiert.notifications.services.contacts import Contacts
from engagiert.shared import topics
from engagiert.shared.logging import configure_logging, get_logger
from engagiert.shared.messaging.replay import partitions_of, replay
from engagiert.shared.mongo import create_client

log = get_logger(__name__)


async def rebuild(
    settings: NotificationsSettings, *, clear: bool = True, members_topic: str | None = None
) -> dict[str, Any]:
    """Replay the members topic from the beginning into the contacts read model; return the counts."""
    started = time.perf_counter()
    topic = members_topic or settings.members_topic
    security = settings.kafka_client_options()
    bootstrap = settings.kafka_bootstrap_servers
    client = create_client(settings.mongodb_url, app_name="engagiert-notifications-rebuild")
    db = client[settings.database_name]
    keys = settings.member_keys()
    try:
        repo = Repository(db)
        await repo.ensure_indexes()
        contacts = Contacts(repo=repo, settings=settings, keys=keys)
        await partitions_of(bootstrap, security, [topic])  # a missing topic fails before anything is cleared
        cleared = (await db[CONTACTS].delete_many({})).deleted_count if clear else 0
        done = await replay(
            bootstrap=bootstrap,
            security=security,
            contract={topic: topics.REGISTRY_MEMBERS},
            apply=contacts.apply_member_events,
            max_records=settings.consumer_max_records,
            client_id="engagiert-notifications-rebuild",
        )
        count = await db[CONTACTS].count_documents({})
        erased = await db[CONTACTS].count_documents({"erased": True})
    finally:
        await keys.close()
        await client.close()
    result = {
        "database": settings.database_name,
        "cleared": cleared,
        "records_read": dict(done.read),
        "events_applied": done.applied,
        "records_skipped": dict(done.skipped),
        "contacts": count,
        "erased_contacts": erased,
        "truncated_partitions": done.truncated,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("contacts_rebuilt", **{k: v for k, v in result.items() if k != "database"})
    return result


def main(argv: list[str] | None = None) -> int:
    """Rebuild the contacts read model and print the counts as one JSON line."""
    parser = argparse.ArgumentParser(
        prog="python -m engagiert.notifications.rebuild", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keep", action="store_true", help="replay over the read model instead of clearing it")
    parser.add_argument("--members-topic", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = NotificationsSettings()
    configure_logging(level=settings.log_level, service=settings.service_name)
    result = asyncio.run(rebuild(settings, clear=not args.keep, members_topic=args.members_topic))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

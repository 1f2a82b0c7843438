"""Rebuilds the member read model by replaying the registry's topics from the beginning.

Run with the service's environment (``EVENTS_*``/``MONGODB_URL``/``KAFKA_BOOTSTRAP_SERVERS``)::

    python -m engagiert.events.rebuild            # clear the read model, replay, print the counts
    python -m engagiert.events.rebuild --keep     # replay over what is there (no clearing)

The replay reads every partition of ``registry.members.v1`` and ``registry.engagement.v1`` from
its earliest offset up to the end it had when the run began, without a consumer group (nothing
is committed; the running service's group is left alone), and applies the records with the
service's own idempotent use case. It may run while the service runs: revision guards and
hours entry ids make the order of the two writers irrelevant. Erasures in the history erase
again (their confirmations carry the same CloudEvent ids, so the registry sees no new one).

Snapshots are sealed with each member's key (crypto-shredding): the replay fetches the keys from
the registry (``MEMBER_KEYS_URL``, ``MEMBER_KEYS_TOKEN``), so it needs the registry running. An
erased member's key is gone: their snapshots are skipped and they are left out (only the
tombstone their erasure fact writes, without personal data, stays); everyone else is rebuilt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from engagiert.events import repository
from engagiert.events.config import EventsSettings
from engagiert.events.repository import HOURS_APPLIED, MEMBERS, Repository
from engagiert.events.services import EventsService
from engagiert.shared import topics
from engagiert.shared.logging import configure_logging, get_logger
from engagiert.shared.messaging.replay import partitions_of, replay
from engagiert.shared.mongo import create_client

log = get_logger(__name__)


async def rebuild(
    settings: EventsSettings,
    *,
    clear: bool = True,
    members_topic: str = topics.REGISTRY_MEMBERS,
    engagement_topic: str = topics.REGISTRY_ENGAGEMENT,
) -> dict[str, Any]:
    """Replay both topics from the beginning into the read model; return what was read, applied and kept."""
    started = time.perf_counter()
    contract = {members_topic: topics.REGISTRY_MEMBERS, engagement_topic: topics.REGISTRY_ENGAGEMENT}
    security = settings.kafka_client_options()
    bootstrap = settings.kafka_bootstrap_servers
    client = create_client(settings.mongodb_url, app_name="engagiert-events-rebuild")
    db = client[settings.database_name]
    keys = settings.member_keys()
    try:
        await repository.ensure_indexes(db)
        read_model = EventsService(Repository(db), settings, keys=keys).member_read_model
        await partitions_of(bootstrap, security, list(contract))  # a missing topic fails before anything is cleared
        cleared = (await db[MEMBERS].delete_many({})).deleted_count if clear else 0
        if clear:
            await db[HOURS_APPLIED].delete_many({})  # the records say what the cleared members counted
        done = await replay(
            bootstrap=bootstrap,
            security=security,
            contract=contract,
            apply=read_model.apply_member_events,
            max_records=settings.consumer_max_records,
            client_id="engagiert-events-rebuild",
        )
        members = await db[MEMBERS].count_documents({})
        erased = await db[MEMBERS].count_documents({"erased": True})
    finally:
        await keys.close()
        await client.close()
    result = {
        "database": settings.database_name,
        "cleared": cleared,
        "records_read": dict(done.read),
        "events_applied": done.applied,
        "records_skipped": dict(done.skipped),
        "members": members,
        "erased_members": erased,
        # A partition whose first offset is not 0 lost old records (retention): the rebuild lacks them.
        "truncated_partitions": done.truncated,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("read_model_rebuilt", **{k: v for k, v in result.items() if k != "database"})
    return result


def main(argv: list[str] | None = None) -> int:
    """Rebuild the read model and print the counts as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.events.rebuild", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="replay over the read model instead of clearing it")
    parser.add_argument("--members-topic", default=topics.REGISTRY_MEMBERS, help=argparse.SUPPRESS)
    parser.add_argument("--engagement-topic", default=topics.REGISTRY_ENGAGEMENT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = EventsSettings()
    configure_logging(level=settings.log_level, service=settings.service_name)
    result = asyncio.run(
        rebuild(
            settings,
            clear=not args.keep,
            members_topic=args.members_topic,
            engagement_topic=args.engagement_topic,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

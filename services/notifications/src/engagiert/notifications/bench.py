"""Measures e-mails per second into Mailpit: the service end to end versus plain aiosmtplib sends in the same run.

Run against the stack from the environment: ``python -m engagiert.notifications.bench --size 10000``
(``make bench`` runs it through ``tests/bench/run.py``). The service part seeds ``size`` contacts
straight into a scratch database, produces ``size`` requests onto a throwaway topic, starts the
service in this process and times from the first request produced until Mailpit holds every
message (and the log says ``sent`` for each). The plain part sends as many messages with aiosmtplib
over as many connections as the service's pool has.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from contextlib import ExitStack
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.main import create_app
from engagiert.notifications.repository import CONTACTS, DELIVERIES
from engagiert.shared.contracts import NotificationRequested
from engagiert.shared.envelope import make_record
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import StackEndpoints, app_client, create_test_topics, produce_records
from engagiert.shared.testing.probes import Mailpit
from engagiert.shared.testing.stack import resolve_stack

AGS = "05774032"


async def _service_run(stack: StackEndpoints, size: int, run: str, timeout: float) -> dict[str, Any]:
    members_topic = await create_test_topics(stack.kafka_bootstrap_servers, "bench.notif.members")
    requests_topic = await create_test_topics(stack.kafka_bootstrap_servers, "bench.notif.requests")
    settings = NotificationsSettings(
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        mongodb_url=stack.mongodb_url,
        mongodb_database=f"bench_notif_{run}",
        consumer_group=f"bench-notif-{run}",
        members_topic=members_topic,
        requests_topic=requests_topic,
        smtp_host=stack.smtp_host,
        smtp_port=stack.smtp_port,
        sender_poll_seconds=0.2,
        log_level="WARNING",
    )
    subject = f"bench {run}"
    mailpit = Mailpit(stack.mailpit_api_url)
    member_ids = [f"b-{run}-{i}" for i in range(size)]
    client = create_client(settings.mongodb_url, app_name="engagiert-bench")
    db = client[settings.database_name]
    try:
        contacts = [
            {
                "_id": m,
                "municipality": AGS,
                "revision": 1,
                "given_name": "Bench",
                "family_name": str(i),
                "language": "de",
                "status": "active",
                "email": f"bench-{run}-{i}@example.org",
                "consent_channels": ["email"],
                "erased": False,
            }
            for i, m in enumerate(member_ids)
        ]
        for start in range(0, size, 1000):
            await db[CONTACTS].insert_many(contacts[start : start + 1000], ordered=False)
        records = [
            make_record(
                NotificationRequested(
                    municipality=AGS, member_id=m, template="generic", params={"subject": subject, "body": "Hallo"}
                ),
                source="/bench",
            )
            for m in member_ids
        ]
        app = create_app(settings)
        async with app_client(app):
            started = time.perf_counter()
            await produce_records(stack.kafka_bootstrap_servers, records, topic=requests_topic)
            produced = time.perf_counter() - started
            first: float | None = None
            arrived = 0
            while arrived < size and time.perf_counter() - started < timeout:
                await asyncio.sleep(1.0)
                arrived = await mailpit.count(f'subject:"{subject}"')
                if arrived and first is None:
                    first = time.perf_counter() - started
            into_mailpit = time.perf_counter() - started
            logged = await db[DELIVERIES].count_documents({"status": "sent"})
            while logged < arrived and time.perf_counter() - started < timeout + 30:
                await asyncio.sleep(0.5)
                logged = await db[DELIVERIES].count_documents({"status": "sent"})
            log_complete = time.perf_counter() - started
    finally:
        await client.drop_database(settings.database_name)
        await client.close()
    return {
        "arrived": arrived,
        "logged_sent": logged,
        "produce_seconds": produced,
        "first_mail_seconds": first,
        "into_mailpit_seconds": into_mailpit,
        "log_complete_seconds": log_complete,
        "pool": settings.smtp_pool_size,
        "batch": settings.sender_batch,
        "chunk": settings.sender_chunk,
    }


async def _plain_run(stack: StackEndpoints, size: int, run: str, connections: int) -> float:
    async def worker(indexes: range) -> None:
        smtp = aiosmtplib.SMTP(hostname=stack.smtp_host, port=stack.smtp_port, start_tls=False)
        await smtp.connect()
        try:
            for i in indexes:
                msg = EmailMessage()
                msg["From"] = "bench@engagiert.local"
                msg["To"] = f"plain-{run}-{i}@example.org"
                msg["Subject"] = f"plain {run}"
                msg.set_content("Hallo")
                msg.add_alternative("<p>Hallo</p>", subtype="html")
                await smtp.send_message(msg)
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker(range(k, size, connections)) for k in range(connections)))
    return time.perf_counter() - started


async def run(stack: StackEndpoints, *, size: int, timeout: float = 300.0) -> dict[str, Any]:
    """Return e-mails per second into Mailpit of the service and of plain aiosmtplib for ``size`` messages each."""
    run_id = uuid.uuid4().hex[:8]
    service = await _service_run(stack, size, run_id, timeout)
    plain_seconds = await _plain_run(stack, size, run_id, service["pool"])
    service_rate = service["arrived"] / service["into_mailpit_seconds"]
    plain_rate = size / plain_seconds
    first = service["first_mail_seconds"]
    return {
        "requests": size,
        "service_emails_in_mailpit": service["arrived"],
        "service_complete": service["arrived"] >= size and service["logged_sent"] >= size,
        "service_seconds": round(service["into_mailpit_seconds"], 2),
        "service_emails_per_second": round(service_rate, 1),
        "service_first_mail_seconds": round(first, 2) if first is not None else None,
        "service_log_complete_seconds": round(service["log_complete_seconds"], 2),
        "requests_produce_seconds": round(service["produce_seconds"], 2),
        "plain_aiosmtplib_seconds": round(plain_seconds, 2),
        "plain_aiosmtplib_emails_per_second": round(plain_rate, 1),
        "ratio_service_to_plain": round(service_rate / plain_rate, 3),
        "smtp_connections": service["pool"],
        "sender_batch": service["batch"],
        "sender_chunk": service["chunk"],
    }


def main() -> None:
    """Run the benchmark against the stack from the environment and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.notifications.bench")
    parser.add_argument("--size", type=int, default=10_000, help="requests (and plain sends)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the service part may take")
    args = parser.parse_args()
    with ExitStack() as exits:
        stack = resolve_stack(exits)
        result = asyncio.run(run(stack, size=args.size, timeout=args.timeout))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

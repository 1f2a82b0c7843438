"""Benchmarks e-mails per second into Mailpit: the service end to end versus plain aiosmtplib sends.

Run: ``python -m services.notifications.bench [size] [timeout_seconds]`` (from the repository root, with the
stack's environment). The service part seeds ``size`` contacts directly into a scratch
database, produces ``size`` requests onto a throwaway topic, starts the service and times from
the first request produced until every delivery is logged as sent. The plain part sends the same
number of messages with aiosmtplib over as many connections as the service's pool has.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.main import create_app
from engagiert.shared.contracts import NotificationRequested
from engagiert.shared.envelope import make_record
from engagiert.shared.mongo import create_client
from engagiert.shared.testing import StackEndpoints, app_client, create_test_topics, produce_records

AGS = "05774032"


async def _seed_contacts(settings: NotificationsSettings, member_ids: list[str], run: str) -> None:
    client = create_client(settings.mongodb_url, app_name="engagiert-bench")
    try:
        coll = client[settings.database_name]["contacts"]
        docs = [
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
        for start in range(0, len(docs), 1000):
            await coll.insert_many(docs[start : start + 1000], ordered=False)
    finally:
        await client.close()


async def _service_run(
    stack: StackEndpoints, size: int, run: str, timeout: float
) -> tuple[float, int, NotificationsSettings]:
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
    member_ids = [f"b-{run}-{i}" for i in range(size)]
    await _seed_contacts(settings, member_ids, run)
    records = [
        make_record(
            NotificationRequested(
                municipality=AGS, member_id=m, template="generic", params={"subject": f"bench {run}", "body": "Hallo"}
            ),
            source="/bench",
        )
        for m in member_ids
    ]
    app = create_app(settings)
    client = create_client(settings.mongodb_url, app_name="engagiert-bench")
    deliveries = client[settings.database_name]["deliveries"]
    try:
        async with app_client(app):
            started = time.perf_counter()
            await produce_records(stack.kafka_bootstrap_servers, records, topic=requests_topic)
            sent = 0
            while sent < size and time.perf_counter() - started < timeout:
                await asyncio.sleep(1.0)
                sent = await deliveries.count_documents({"status": "sent"})
            elapsed = time.perf_counter() - started
    finally:
        await client.drop_database(settings.database_name)
        await client.close()
    return elapsed, sent, settings


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


async def run(stack: StackEndpoints, size: int = 10000, *, timeout: float = 900.0) -> dict[str, Any]:
    """Measure e-mails per second of the service and of plain aiosmtplib for ``size`` messages each."""
    run_id = uuid.uuid4().hex[:8]
    service_seconds, sent, settings = await _service_run(stack, size, run_id, timeout)
    plain_seconds = await _plain_run(stack, size, run_id, settings.smtp_pool_size)
    service_rate = sent / service_seconds
    plain_rate = size / plain_seconds
    return {
        "size": size,
        "service_sent": sent,
        "service_complete": sent >= size,
        "service_seconds": round(service_seconds, 2),
        "service_emails_per_second": round(service_rate, 1),
        "plain_aiosmtplib_seconds": round(plain_seconds, 2),
        "plain_aiosmtplib_emails_per_second": round(plain_rate, 1),
        "ratio_service_to_plain": round(service_rate / plain_rate, 3),
        "smtp_connections": settings.smtp_pool_size,
        "sender_concurrency": settings.sender_concurrency,
    }


def main() -> None:
    """Run the benchmark against the stack from the environment and print the figures."""
    from contextlib import ExitStack

    from engagiert.shared.testing import resolve_stack

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 900.0
    with ExitStack() as exits:
        stack = resolve_stack(exits)
        result = asyncio.run(run(stack, size, timeout=timeout))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

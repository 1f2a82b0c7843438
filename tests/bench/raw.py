"""Raw ceilings measured in the same run as the services: broker, store and SMTP without our code."""

from __future__ import annotations

import asyncio
import glob
import os
import re
import subprocess
import tempfile
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engagiert.shared.mongo import create_client
from engagiert.shared.settings import aiokafka_options, java_client_properties
from engagiert.shared.testing import StackEndpoints
from engagiert.shared.testing.stack import REPO_ROOT

PAYLOAD = b'{"specversion":"1.0","id":"%d","source":"/bench","type":"de.engagiert.hours.report.v1","data":{"hours":2}}'


async def _topic(bootstrap: str) -> str:
    name = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


async def aiokafka_produce_consume(stack: StackEndpoints, n: int) -> dict[str, float]:
    """Produce and then consume ``n`` small records with plain aiokafka; records/s each way."""
    topic = await _topic(stack.kafka_bootstrap_servers)
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.kafka_bootstrap_servers, acks="all", linger_ms=5, **aiokafka_options()
    )
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, PAYLOAD % i, key=str(i % 100).encode()) for i in range(n)]
    await asyncio.gather(*futures)
    produce_s = time.perf_counter() - started
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_options(),
    )
    await consumer.start()
    got = 0
    started = time.perf_counter()
    while got < n:
        batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
        got += sum(len(v) for v in batch.values())
    consume_s = time.perf_counter() - started
    await consumer.stop()
    return {"aiokafka_produce_per_s": n / produce_s, "aiokafka_consume_per_s": n / consume_s}


def kafka_perf_tool(stack: StackEndpoints, n: int) -> dict[str, float | str]:
    """Run Kafka's own producer perf tool (ProducerPerformance) against a fresh topic; records/s."""
    stack_dir = os.environ.get("STACK_DIR", str(REPO_ROOT / ".stack"))  # as deploy/local/stack.sh
    libs = os.environ.get("KAFKA_LIBS", f"{stack_dir}/kafka-libs")
    if not glob.glob(f"{libs}/kafka-tools-*.jar"):
        return {"kafka_perf_tool_produce_per_s": f"not run: no kafka-tools jar in {libs} (KAFKA_LIBS)"}
    topic = f"bench.perf.{uuid.uuid4().hex[:8]}"
    with tempfile.NamedTemporaryFile("w", suffix=".properties") as config:
        # The broker's SASL settings, as the Java tools read them (the file holds a password: a temporary file).
        props = java_client_properties()
        config.write("".join(f"{k}={v}\n" for k, v in props.items() if k != "bootstrap.servers"))
        config.flush()
        subprocess.run(
            ["java", "-Xmx256m", "-cp", f"{libs}/*", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
             stack.kafka_bootstrap_servers, "--command-config", config.name, "--create", "--topic", topic,
             "--partitions", "1", "--replication-factor", "1"],
            check=True, capture_output=True,
        )  # fmt: skip
        out = subprocess.run(
            ["java", "-Xmx256m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
             "--num-records", str(n), "--record-size", "200", "--throughput", "-1", "--producer.config", config.name,
             "--producer-props", f"bootstrap.servers={stack.kafka_bootstrap_servers}", "acks=all", "linger.ms=5"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    match = re.search(r"([\d.]+) records/sec", out.stdout.strip().splitlines()[-1])
    return {"kafka_perf_tool_produce_per_s": float(match.group(1))} if match else {}


async def store_bulk_insert(stack: StackEndpoints, n: int) -> dict[str, float]:
    """Insert ``n`` small documents in batches of 1,000 into a scratch database; documents/s."""
    client = create_client(stack.mongodb_url)
    db = client[f"bench_raw_{uuid.uuid4().hex[:8]}"]
    docs = [{"_id": f"e{i}", "member_id": f"m{i % 500}", "hours": 2.0, "date": "2026-03-01"} for i in range(n)]
    started = time.perf_counter()
    for i in range(0, n, 1000):
        await db["entries"].insert_many(docs[i : i + 1000], ordered=False)
    elapsed = time.perf_counter() - started
    await client.drop_database(db.name)
    await client.close()
    return {"store_bulk_insert_per_s": n / elapsed}


async def smtp_raw(stack: StackEndpoints, n: int) -> dict[str, Any]:
    """Send ``n`` small e-mails with plain aiosmtplib over one connection; e-mails/s."""
    try:
        import aiosmtplib
    except ImportError:  # pragma: no cover - the notifications service brings it
        return {}
    from email.message import EmailMessage

    run = uuid.uuid4().hex[:8]
    smtp = aiosmtplib.SMTP(hostname=stack.smtp_host, port=stack.smtp_port)
    await smtp.connect()
    started = time.perf_counter()
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = "bench@engagiert.invalid"
        msg["To"] = f"raw-{run}-{i}@bench.invalid"
        msg["Subject"] = f"bench raw {run}"
        msg.set_content("Hallo")
        await smtp.send_message(msg)
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return {"smtp_raw_per_s": n / elapsed}

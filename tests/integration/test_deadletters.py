"""Proves the dead-letter tool on the real broker: list shows reasons without values, redrive restores the record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from engagiert.shared.deadletters import main
from engagiert.shared.messaging.dlq import DLQ_HEADERS, dead_letter_headers
from engagiert.shared.testing import StackEndpoints, consume_until, produce_records
from engagiert.shared.topics import dlq

pytestmark = pytest.mark.integration


def _event(event_id: str, email: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "type": "de.engagiert.member.registered.v1",
            "source": "/engagiert/test",
            "id": event_id,
            "municipality": "05774032",
            "data": {"contact": {"email": email}},
        }
    ).encode()


async def test_list_and_redrive(
    stack: StackEndpoints,
    kafka_topic: Callable[..., Awaitable[str]],
    unique: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.kafka_bootstrap_servers)
    topic = await kafka_topic("dlqtool")
    group = unique("grp")
    records = []
    for i, reason in enumerate(["invalid-data", "handler-error", "handler-error"]):
        headers = dead_letter_headers(
            original=[("content-type", b"application/cloudevents+json"), ("traceparent", f"tp-{i}".encode())],
            group=group,
            reason=reason,
            error=f"boom {i}",
            attempts=5,
            topic=topic,
            partition=1,
            offset=40 + i,
        )
        records.append((dlq(topic), f"m-{i}".encode(), _event(f"ev-{i}", f"person{i}@example.org"), headers))
    await produce_records(stack.kafka_bootstrap_servers, records)

    assert await _run(["list", "--topic", topic, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["offset"] for x in listed] == [0, 1, 2]
    assert [x["reason"] for x in listed] == ["invalid-data", "handler-error", "handler-error"]
    assert listed[0]["origin_topic"] == topic
    assert listed[0]["origin_offset"] == "40"
    assert listed[0]["group"] == group
    assert listed[0]["ce_type"] == "de.engagiert.member.registered.v1"
    assert listed[0]["ce_id"] == "ev-0"
    assert listed[0]["key"] == "m-0"

    assert await _run(["list", "--topic", dlq(topic)]) == 0
    text = capsys.readouterr().out
    assert "reason=invalid-data" in text
    assert "@example.org" not in text  # the value's personal data is never printed

    assert await _run(["redrive", "--topic", dlq(topic), "--offset", "99"]) == 2  # unknown offset: nothing sent
    assert await _run(["redrive", "--topic", dlq(topic), "--all-reason", "handler-error", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would redrive") == 2
    assert await _run(["redrive", "--topic", dlq(topic), "--all-reason", "handler-error"]) == 0
    assert await _run(["redrive", "--topic", dlq(topic), "--offset", "0"]) == 0

    got = await consume_until(stack.kafka_bootstrap_servers, topic, lambda rs: len(rs) >= 3, timeout=30)
    assert sorted(r.key for r in got) == [b"m-0", b"m-1", b"m-2"]
    for r in got:
        i = int(r.key.decode()[2:])
        assert r.value == _event(f"ev-{i}", f"person{i}@example.org")
        headers = dict(r.headers)
        assert not set(headers) & set(DLQ_HEADERS)
        assert headers["traceparent"] == f"tp-{i}".encode()
        assert headers["content-type"] == b"application/cloudevents+json"


async def _run(argv: list[str]) -> int:
    """Run the tool in a thread: ``main`` runs its own event loop with ``asyncio.run``."""
    return await asyncio.to_thread(main, argv)

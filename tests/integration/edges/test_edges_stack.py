"""The hardened edge on real service processes: limits before work, rate limits on the public routes."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engagiert.shared.testing.service import ServiceProcess

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
BODY = 60 * 1000 * 1000


def _service(name: str) -> ServiceProcess:
    run = uuid.uuid4().hex[:8]
    return ServiceProcess(
        f"engagiert.{name}.main",
        env={
            f"{name.upper()}_MONGODB_DATABASE": f"edges_{name}_{run}",
            f"{name.upper()}_CONSUMER_GROUP": f"edges-{name}-{run}",
            "ENVIRONMENT": "test",
        },
    )


@pytest.fixture(scope="module")
def registry(stack: object) -> Iterator[ServiceProcess]:
    proc = _service("registry").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def events(stack: object) -> Iterator[ServiceProcess]:
    proc = _service("events").start()
    yield proc
    proc.stop()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _send_big_body(port: int, *, chunked: bool) -> tuple[int, int]:
    """Send 60 MB to /hours without a token; return the status and the bytes the server let us send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "POST /v1/municipalities/05774032/hours HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {BODY}\r\n\r\n"
    writer.write(head.encode())
    status_line = asyncio.create_task(reader.readline())
    sent = 0
    chunk = b"[" + b"1," * (32 * 1024 - 1)
    try:
        while sent < BODY and not status_line.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await asyncio.wait_for(writer.drain(), timeout=10)
            sent += len(chunk)
    except (ConnectionError, TimeoutError):
        pass
    line = await asyncio.wait_for(status_line, timeout=30)
    writer.close()
    return int(line.split()[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_60_mb_body_without_a_token_is_refused_with_413_in_little_memory(
    registry: ServiceProcess, chunked: bool
) -> None:
    """60 MB to /hours without a token: 413 before authentication; the process grows by less than 10 MiB."""
    assert registry.proc is not None
    async with httpx.AsyncClient(base_url=registry.url) as client:
        assert (await client.get("/healthz")).status_code == 200
    before = _rss(registry.proc.pid)
    status, sent = await _send_big_body(registry.port, chunked=chunked)
    after = _rss(registry.proc.pid)
    print(f"\n{'chunked' if chunked else 'content-length'}: status {status}, client sent {sent / MiB:.1f} MiB, "
          f"server RSS {before / MiB:.1f} -> {after / MiB:.1f} MiB (+{(after - before) / MiB:.2f})")  # fmt: skip
    assert status == 413
    assert after - before < 10 * MiB
    async with httpx.AsyncClient(base_url=registry.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_300_forged_card_codes_get_429_after_the_limit_and_never_a_5xx(events: ServiceProcess) -> None:
    """A client trying 300 forged codes gets 404 up to the public rate limit, then 429 with Retry-After."""
    async with httpx.AsyncClient(base_url=events.url, timeout=30) as client:
        responses = [await client.get(f"/v1/honours/verify/forged{i:04d}.AAAA") for i in range(300)]
    counts = Counter(r.status_code for r in responses)
    print(f"\n300 forged codes: {dict(counts)}")
    assert not [r for r in responses if r.status_code >= 500]
    first_429 = next(i for i, r in enumerate(responses) if r.status_code == 429)
    assert first_429 == 60  # the default PUBLIC_RATE_LIMIT, 60/minute
    assert all(r.status_code == 429 for r in responses[first_429:])
    assert 1 <= int(responses[-1].headers["retry-after"]) <= 60
    assert responses[-1].headers["content-type"] == "application/problem+json"
    assert responses[0].headers["cache-control"] == "no-store"
    log = events.log_tail(400)
    assert "forged0001" not in log
    assert "/v1/honours/verify/[masked]" in log

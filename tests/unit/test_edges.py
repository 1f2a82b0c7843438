"""The HTTP edge of every service: limits before parsing, control characters, rate limits, headers, logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from engagiert.shared.auth import Staff
from engagiert.shared.logging import PersonalDataFilter, mask_secrets, redact_text
from engagiert.shared.openapi import NO_CONTROL_CHARACTERS
from engagiert.shared.runtime import ServiceRuntime
from engagiert.shared.settings import ServiceSettings


class Note(BaseModel):
    text: str


def _app() -> Any:
    runtime = ServiceRuntime(ServiceSettings(max_body_bytes=4096), title="edge test", description="edges")
    router = APIRouter()

    @router.post("/v1/municipalities/{ags}/notes")
    async def create(ags: str, note: Note, _p: Staff) -> dict[str, str]:
        return {"text": note.text}

    @router.post("/v1/import")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @router.get("/rsvp/{token}", response_class=HTMLResponse)
    async def page(token: str) -> HTMLResponse:
        return HTMLResponse("<html><head><style>p{color:red}</style></head><body><p>hi</p></body></html>")

    @router.post("/v1/csv")
    async def read_csv(request: Request) -> int:
        import csv
        import io

        return len(list(csv.reader(io.StringIO((await request.body()).decode()))))

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaputt")

    runtime.app.include_router(router)
    runtime.edge("/v1/import", max_body_bytes=64 * 1024)
    runtime.edge("/v1/csv", max_body_bytes=1024 * 1024)
    runtime.edge("/rsvp/{token}", public=True, rate="5/minute", token=True)
    return runtime.app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_body_over_the_limit_is_refused_before_authentication(client: httpx.AsyncClient) -> None:
    """A declared body over 4 KiB answers 413 problem+json, not 401: nothing was read or parsed."""
    r = await client.post("/v1/municipalities/05774032/notes", content=b"x" * 10_000)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_streamed_body_is_cut_at_the_limit(client: httpx.AsyncClient) -> None:
    """A chunked body without Content-Length is counted as it arrives and refused with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 1024

    r = await client.post("/v1/municipalities/05774032/notes", content=chunks())
    assert r.status_code == 413


async def test_a_route_sets_its_own_limit(client: httpx.AsyncClient) -> None:
    """The import route takes 40 KB although the default limit is 4 KiB."""
    r = await client.post("/v1/import", content=b"a" * 40_000, headers={"content-type": "application/octet-stream"})
    assert r.json() == {"size": 40_000}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/municipalities/05774032/notes", b'{"text": "a\\u0000b"}'),
        ("/v1/municipalities/05774032/notes?q=%00", b'{"text": "ok"}'),
        ("/v1/municipalities/05774032/notes", b'{"text": "bell\\u0007"}'),
    ],
)
async def test_control_characters_are_refused_with_422(client: httpx.AsyncClient, url: str, body: bytes) -> None:
    """NUL and other C0 controls in the body or the query answer 422 problem+json before any handler."""
    r = await client.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "control characters" in r.json()["detail"]


async def test_tabs_newlines_and_escaped_backslashes_pass(client: httpx.AsyncClient) -> None:
    """Tab, newline and a literal backslash-u0000 text are not control characters: the request goes on (401)."""
    r = await client.post(
        "/v1/municipalities/05774032/notes",
        content=b'{"text": "a\\tb\\nc \\\\u0000"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 401


async def test_public_routes_answer_429_with_retry_after(client: httpx.AsyncClient) -> None:
    """After five requests a minute the sixth is refused with 429 and Retry-After, never a 5xx."""
    statuses = [(await client.get(f"/rsvp/forged{i}")).status_code for i in range(8)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    r = await client.get("/rsvp/again")
    assert 1 <= int(r.headers["retry-after"]) <= 60


async def test_html_pages_carry_a_strict_policy_and_token_pages_no_store(client: httpx.AsyncClient) -> None:
    """The page's CSP forbids script and framing and allows its inline style by hash; a token page is no-store."""
    r = await client.get("/rsvp/some-token")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "unsafe-inline" not in csp
    assert "'sha256-" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


async def test_a_crash_is_one_problem_and_the_connection_stays_usable(client: httpx.AsyncClient) -> None:
    """An unexpected error answers 500 problem+json without re-raising into the server."""
    r = await client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/healthz")).status_code == 200


async def test_the_openapi_document_lists_every_error_as_problem_json(client: httpx.AsyncClient) -> None:
    """Every operation documents 4xx answers with application/problem+json and the Problem schema."""
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/municipalities/{ags}/notes"]["post"]
    for code in ("400", "401", "403", "404", "413", "422", "429"):
        assert op["responses"][code]["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Note"]["properties"]["text"]["pattern"] == NO_CONTROL_CHARACTERS
    page = doc["paths"]["/rsvp/{token}"]["get"]["responses"]
    assert "text/html" in page["410"]["content"]


def test_access_log_lines_mask_tokens_and_codes() -> None:
    """An access log record's path keeps the route but not the RSVP token or the card code."""
    _app()  # registers /rsvp/{token}
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/rsvp/eyJhYmMiOiJkZWYifQ.c2lnbmF0dXJl?lang=de", "1.1", 200),
        None,
    )
    PersonalDataFilter().filter(record)
    assert "eyJhYmMi" not in record.getMessage()
    assert "/rsvp/[masked]?lang=de" in record.getMessage()
    assert mask_secrets("GET /x?code=abc123&lang=de") == "GET /x?code=[masked]&lang=de"
    assert "anna@example.org" not in redact_text("mail to anna@example.org")


async def test_an_unreadable_csv_is_a_422(client: httpx.AsyncClient) -> None:
    """A CSV field over the csv module's limit answers 422 problem+json, not 500."""
    r = await client.post("/v1/csv", content=b"a," + b"x" * 200_000, headers={"content-type": "text/csv"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"

"""Card codes verify offline with the published keys and survive a key rotation; links do too; deadlines win."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from engagiert.events.bench import event_body, seed_members
from engagiert.events.main import create_app
from engagiert.events.repository import EVENTS
from engagiert.shared.signing import CardKeyRing
from engagiert.shared.testing import app_client

Running = Any  # the fixture type lives in conftest.py (not importable under importlib mode)

pytestmark = pytest.mark.integration

VERIFY = Path(__file__).resolve().parents[3] / "tools" / "verify_card.py"


async def _granted_code(r: Running) -> str:
    """Propose and grant a local award for the seeded member; return the card's verification code."""
    proposed = await r.client.post(
        f"/v1/municipalities/{r.ags}/honours", json={"member_id": "m000000", "title": "Ehrennadel"}, headers=r.headers
    )
    assert proposed.status_code == 201, proposed.text
    granted = await r.client.post(
        f"/v1/municipalities/{r.ags}/honours/{proposed.json()['id']}/grant", json={}, headers=r.headers
    )
    assert granted.status_code == 200, granted.text
    return str(granted.json()["verification_code"])


async def _invitation_link(r: Running) -> tuple[str, str]:
    """Create an event, invite the seeded member; return (event id, the RSVP link's token)."""
    created = await r.client.post(r.base, json=event_body(capacity=5, guests=0), headers=r.headers)
    assert created.status_code == 201, created.text
    event_id = str(created.json()["id"])
    issued = await r.client.post(
        f"{r.base}/{event_id}/invitations/issue", json={"min_hours_last_12_months": 1}, headers=r.headers
    )
    assert issued.status_code == 200, issued.text
    event = await r.db[EVENTS].find_one({"_id": event_id})
    assert event is not None
    url = r.app.state.use_cases().invitation_mails.rsvp_url(f"{event_id}:m000000", event["rsvp_deadline"])
    return event_id, url.rsplit("/", 1)[1]


async def test_a_card_code_verifies_offline_with_the_published_key_and_after_a_rotation(
    running: Running, tmp_path: Path
) -> None:
    """The JWK Set at /v1/honours/keys verifies a code with tools/verify_card.py; rotated keys keep old cards and links."""
    r = running
    await seed_members(r.db, r.ags, 1)
    code = await _granted_code(r)
    _, token = await _invitation_link(r)
    keys = await r.client.get("/v1/honours/keys")
    assert keys.status_code == 200
    jwks = keys.json()
    assert [(k["kty"], k["crv"], k["kid"]) for k in jwks["keys"]] == [("OKP", "Ed25519", "local")]
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(VERIFY), str(tmp_path / "jwks.json"), code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    print(f"\noffline check of the card code: {out.stdout.strip()}")
    assert (await r.client.get(f"/v1/honours/verify/{code}")).status_code == 200

    # Rotation: a new card key first, the old one kept; a link key ring in front of LINK_SECRET.
    new_card_key = CardKeyRing.generate_entry("2027-01")
    rotated = r.settings.model_copy(
        update={
            "card_signing_keys": SecretStr(f"{new_card_key},{r.settings.card_signing_keys.get_secret_value()}"),
            "link_secrets": SecretStr("2027-01:" + "n" * 40),
            "consumer_group": r.settings.consumer_group + "-rotated",
        }
    )
    async with app_client(create_app(rotated)) as client:
        assert [k["kid"] for k in (await client.get("/v1/honours/keys")).json()["keys"]] == ["2027-01", "local"]
        old_card = await client.get(f"/v1/honours/verify/{code}")
        assert old_card.status_code == 200, old_card.text
        old_link = await client.get(f"/rsvp/{token}")
        assert old_link.status_code == 200, old_link.text
        assert "<form" in old_link.text
        new_code = await _granted_code_with(client, r)
        assert json.loads(_b64(new_code.split(".")[0]))["kid"] == "2027-01"


async def _granted_code_with(client: Any, r: Running) -> str:
    proposed = await client.post(
        f"/v1/municipalities/{r.ags}/honours", json={"member_id": "m000000", "title": "Ehrenbrief"}, headers=r.headers
    )
    assert proposed.status_code == 201, proposed.text
    granted = await client.post(
        f"/v1/municipalities/{r.ags}/honours/{proposed.json()['id']}/grant", json={}, headers=r.headers
    )
    assert granted.status_code == 200, granted.text
    return str(granted.json()["verification_code"])


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_an_answer_after_a_deadline_moved_earlier_is_refused(running: Running) -> None:
    """A link signed to the old deadline: after the deadline moved to the past, the page and the answer say expired."""
    r = running
    await seed_members(r.db, r.ags, 1)
    event_id, token = await _invitation_link(r)
    assert (await r.client.get(f"/rsvp/{token}")).status_code == 200
    soon = datetime.now(UTC) + timedelta(seconds=2)
    patched = await r.client.patch(f"{r.base}/{event_id}", json={"rsvp_deadline": soon.isoformat()}, headers=r.headers)
    assert patched.status_code == 200, patched.text
    await asyncio.sleep(3)
    page = await r.client.get(f"/rsvp/{token}")
    assert page.status_code == 410, page.text
    answer = await r.client.post(f"/rsvp/{token}", data={"answer": "accept", "guests": "0"})
    assert answer.status_code == 410, answer.text
    assert "abgelaufen" in answer.text


async def test_a_crafted_code_or_link_with_an_enormous_expiry_is_malformed_not_a_500(running: Running) -> None:
    """A token whose expiry no date can hold answers 404/400, never 5xx."""
    r = running
    ring = r.settings.link_keys()
    signed = ring.sign("x:y|99999999999999999999", purpose="rsvp")
    forged = signed.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAAAA"
    assert (await r.client.get(f"/rsvp/{signed}")).status_code == 400
    assert (await r.client.get(f"/rsvp/{forged}")).status_code == 403
    token = ring.sign("h|k|n|lifelong|99999999999999999999", purpose="card")
    assert (await r.client.get(f"/v1/honours/verify/{token}")).status_code == 404

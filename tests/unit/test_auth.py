"""Bearer tokens: local minting, verification, municipality scoping, production refuses the local key."""

from __future__ import annotations

import time
from typing import Annotated

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from engagiert.shared.auth import Principal, TokenVerifier, mint_token, scoped
from engagiert.shared.problems import install_problem_handlers
from engagiert.shared.settings import LOCAL_AUTH_KEY, ServiceSettings
from engagiert.shared.testing import token_for

PADERBORN, BIELEFELD = "05774032", "05711000"


def app() -> TestClient:
    api = FastAPI()
    install_problem_handlers(api)
    api.state.token_verifier = TokenVerifier(ServiceSettings())

    @api.get("/v1/municipalities/{ags}/members")
    def members(ags: str, p: Annotated[Principal, Depends(scoped("reader"))]) -> dict[str, str]:
        return {"ags": ags, "sub": p.subject}

    @api.post("/v1/municipalities/{ags}/members")
    def create(ags: str, p: Annotated[Principal, Depends(scoped("staff"))]) -> dict[str, str]:
        return {"ok": ags}

    return TestClient(api)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_staff_token_reads_and_writes_its_own_municipality() -> None:
    """Staff of Paderborn may read and write under Paderborn."""
    client = app()
    token = token_for([PADERBORN], "staff")
    assert client.get(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token)).status_code == 200
    assert client.post(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token)).status_code == 200


def test_another_municipality_answers_404_not_403() -> None:
    """A Bielefeld token learns nothing about Paderborn, not even that the path exists."""
    response = app().get(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token_for([BIELEFELD], "staff")))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_reader_may_not_write() -> None:
    """The reader role reads only."""
    response = app().post(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token_for([PADERBORN], "reader")))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        mint_token(key="another-key", subject="x", municipalities=[PADERBORN], roles=["staff"]),
        mint_token(key=LOCAL_AUTH_KEY, subject="x", municipalities=[PADERBORN], roles=["staff"], ttl_seconds=-10),
        mint_token(key=LOCAL_AUTH_KEY, subject="x", municipalities=[PADERBORN], roles=["staff"], audience="other"),
    ],
    ids=["garbage", "wrong-key", "expired", "wrong-audience"],
)
def test_invalid_tokens_get_401_problem(token: str) -> None:
    """Forged, expired or foreign tokens are refused with a problem+json 401."""
    response = app().get(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["title"] == "Invalid token"


def test_no_token_gets_401() -> None:
    """A request without a bearer token is refused."""
    assert app().get(f"/v1/municipalities/{PADERBORN}/members").status_code == 401


def test_an_unsigned_token_is_refused() -> None:
    """alg=none never passes."""
    token = jwt.encode(
        {"sub": "x", "municipalities": [PADERBORN], "roles": ["staff"], "exp": int(time.time()) + 60},
        key="",
        algorithm="none",
    )
    assert app().get(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token)).status_code == 401


def test_production_refuses_the_local_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENVIRONMENT=production with the well-known local key does not start."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="local token key"):
        ServiceSettings()


def test_production_with_jwks_and_own_secrets_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production with a JWKS URL, no local key and an own link secret is accepted."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_JWKS_URL", "https://idp.example/realms/x/protocol/openid-connect/certs")
    monkeypatch.setenv("AUTH_LOCAL_KEY", "")
    monkeypatch.setenv("LINK_SECRET", "s3cr3t-of-the-operator-32-bytes-or-more")
    assert ServiceSettings().environment == "production"

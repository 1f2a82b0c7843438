"""Bearer tokens: local minting, verification, municipality scoping, production refuses the local key."""

from __future__ import annotations

import hmac
import json
import time
from typing import Annotated, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from jwt.utils import base64url_encode
from pydantic import SecretStr, ValidationError

from engagiert.shared.auth import Principal, TokenVerifier, mint_token, pinned_algorithm, principal_from_claims, scoped
from engagiert.shared.problems import Problem, install_problem_handlers
from engagiert.shared.settings import LOCAL_AUTH_KEY, ServiceSettings
from engagiert.shared.testing import token_for

PADERBORN, BIELEFELD = "05774032", "05711000"


def app(verifier: TokenVerifier | None = None) -> TestClient:
    api = FastAPI()
    install_problem_handlers(api)
    api.state.token_verifier = verifier or TokenVerifier(ServiceSettings())

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


PRODUCTION = {
    "ENVIRONMENT": "production",
    "AUTH_JWKS_URL": "https://idp.example/realms/x/protocol/openid-connect/certs",
    "AUTH_ISSUER": "https://idp.example/realms/x",
    "AUTH_LOCAL_KEY": "",
    "LINK_SECRET": "s3cr3t-of-the-operator-32-bytes-or-more",
    "MEMBER_KEYS_TOKEN": "t0ken-of-the-operator-32-bytes-or-more",
}


def production_env(monkeypatch: pytest.MonkeyPatch, **changes: str | None) -> None:
    """Set a valid production environment with ``changes`` (None removes a variable)."""
    for name, value in {**PRODUCTION, **changes}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_production_with_jwks_and_own_secrets_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production with a JWKS URL and issuer, no local key and an own link secret is accepted."""
    production_env(monkeypatch)
    assert ServiceSettings().environment == "production"


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"AUTH_LOCAL_KEY": "an-own-key-of-the-operator"}, "HS256"), ({"AUTH_JWKS_URL": None}, "AUTH_JWKS_URL"),
     ({"AUTH_ISSUER": None}, "AUTH_ISSUER")],
    ids=["own-local-key", "no-jwks-url", "no-issuer"],
)  # fmt: skip
def test_production_refuses_hs256_and_needs_jwks_and_issuer(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, str | None], message: str
) -> None:
    """Production refuses any local key (HS256) and does not start without a JWKS URL and issuer."""
    production_env(monkeypatch, **changes)
    with pytest.raises(ValidationError, match=message):
        ServiceSettings()


def test_a_jwks_url_needs_an_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuer is always checked: a JWKS URL without AUTH_ISSUER does not start."""
    monkeypatch.setenv("AUTH_JWKS_URL", "https://idp.example/realms/x/protocol/openid-connect/certs")
    monkeypatch.delenv("AUTH_ISSUER", raising=False)
    with pytest.raises(ValidationError, match="AUTH_ISSUER"):
        ServiceSettings()


# --- the JWKS path with a key set served from memory (the real Keycloak: tests/integration/auth) ---

ISSUER = "https://idp.example/realms/engagiert"


class Provider:
    """An RSA signing key and its JWKS document, standing in for the provider's endpoint."""

    def __init__(self, kid: str = "k1") -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetches = 0

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """Return the public key as a JWK."""
        doc: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**doc, "kid": self.kid, "use": "sig", **extra}

    def sign(self, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None) -> str:
        """Return ``claims`` signed with this key."""
        now = int(time.time())
        full = {"iss": ISSUER, "aud": ["engagiert", "account"], "sub": "u1", "iat": now, "exp": now + 60, **claims}
        return jwt.encode(full, self.private, algorithm=alg, headers={"kid": kid or self.kid})


def jwks_verifier(monkeypatch: pytest.MonkeyPatch, *keys: dict[str, Any], environment: str = "local") -> TokenVerifier:
    """Return a verifier whose JWKS endpoint answers ``keys`` (from memory)."""
    monkeypatch.setenv("ENVIRONMENT", environment)
    settings = ServiceSettings(
        auth_jwks_url="https://idp.example/certs",
        auth_issuer=ISSUER,
        auth_local_key=None if environment == "production" else SecretStr(LOCAL_AUTH_KEY),
        link_secret=SecretStr("s3cr3t-of-the-operator-32-bytes-or-more"),
        member_keys_token=SecretStr("t0ken-of-the-operator-32-bytes-or-more"),
    )
    verifier = TokenVerifier(settings)
    assert verifier._jwks is not None
    monkeypatch.setattr(verifier._jwks, "fetch_data", lambda: {"keys": list(keys)})
    return verifier


KEYCLOAK_STAFF = {"realm_access": {"roles": ["staff", "offline_access"]}, "municipalities": [PADERBORN]}


def test_a_keycloak_shaped_token_maps_roles_and_municipalities(monkeypatch: pytest.MonkeyPatch) -> None:
    """realm_access.roles and municipalities become the principal's roles and municipalities."""
    idp = Provider()
    verifier = jwks_verifier(monkeypatch, idp.jwk(alg="RS256"))
    principal = verifier.verify(idp.sign(KEYCLOAK_STAFF))
    assert principal == Principal(subject="u1", municipalities=frozenset({PADERBORN}), roles=frozenset({"staff"}))
    client = app(verifier)
    assert (
        client.post(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(idp.sign(KEYCLOAK_STAFF))).status_code
        == 200
    )
    assert (
        client.get(f"/v1/municipalities/{BIELEFELD}/members", headers=bearer(idp.sign(KEYCLOAK_STAFF))).status_code
        == 404
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"realm_access": ["staff"], "municipalities": [PADERBORN]},
        {"realm_access": "staff", "municipalities": [PADERBORN]},
        {"realm_access": {"roles": "staff"}, "municipalities": [PADERBORN]},
        {"realm_access": {"roles": [1, 2]}, "municipalities": [PADERBORN]},
        {"realm_access": {"roles": ["staff"]}, "municipalities": PADERBORN},
        {"realm_access": {"roles": ["staff"]}, "municipalities": {"ags": PADERBORN}},
        {"realm_access": {"roles": ["staff"]}, "municipalities": ["Paderborn"]},
        {"realm_access": {"roles": ["staff"]}, "municipalities": [PADERBORN], "sub": 17},
    ],
    ids=["realm_access-list", "realm_access-string", "roles-string", "roles-numbers", "municipalities-string",
         "municipalities-object", "municipalities-not-ags", "sub-number"],
)  # fmt: skip
def test_other_claim_shapes_answer_401_not_500(monkeypatch: pytest.MonkeyPatch, claims: dict[str, Any]) -> None:
    """A validly signed token with claims of another shape is a clear 401."""
    idp = Provider()
    response = app(jwks_verifier(monkeypatch, idp.jwk())).get(
        f"/v1/municipalities/{PADERBORN}/members", headers=bearer(idp.sign(claims))
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Invalid token"


def test_the_key_pins_the_algorithm_not_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """An RSA key verifies RS256 only: the public key used as an HS256 secret (key confusion) is refused."""
    idp = Provider()
    verifier = jwks_verifier(monkeypatch, idp.jwk(alg="RS256"))
    public_pem = idp.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "engagiert", "sub": "x", "exp": now + 60, **KEYCLOAK_STAFF}
    signing_input = b".".join(
        base64url_encode(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": idp.kid}, claims)
    )
    forged = (signing_input + b"." + base64url_encode(hmac.digest(public_pem, signing_input, "sha256"))).decode()
    with pytest.raises(Problem) as refused:
        verifier.verify(forged)
    assert refused.value.status == 401
    with pytest.raises(Problem):
        verifier.verify(idp.sign(KEYCLOAK_STAFF, alg="PS256"))


def test_pinned_algorithm_per_key_type() -> None:
    """RSA defaults to RS256, a key's own alg must fit its type, symmetric keys are never accepted."""
    idp = Provider()
    assert pinned_algorithm(jwt.PyJWK(idp.jwk())) == "RS256"
    assert pinned_algorithm(jwt.PyJWK(idp.jwk(alg="PS256"))) == "PS256"
    with pytest.raises(jwt.InvalidKeyError):
        pinned_algorithm(jwt.PyJWK(idp.jwk(alg="HS256")))
    with pytest.raises(jwt.InvalidKeyError):
        pinned_algorithm(jwt.PyJWK({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}))


@pytest.mark.parametrize(
    ("claims", "what"),
    [({"iss": "https://idp.example/realms/other"}, "issuer"), ({"aud": "another-client"}, "audience"),
     ({"exp": int(time.time()) - 5}, "expired")],
)  # fmt: skip
def test_jwks_tokens_check_issuer_audience_and_expiry(
    monkeypatch: pytest.MonkeyPatch, claims: dict[str, Any], what: str
) -> None:
    """Another issuer, another audience or an expired token is refused."""
    idp = Provider()
    with pytest.raises(Problem) as refused:
        jwks_verifier(monkeypatch, idp.jwk()).verify(idp.sign({**KEYCLOAK_STAFF, **claims}))
    assert refused.value.status == 401


def test_an_unknown_kid_fetches_the_key_set_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rotated-in key is found by fetching again; a key no longer published is refused after that."""
    old, new = Provider("old"), Provider("new")
    monkeypatch.setenv("AUTH_JWKS_COOLDOWN_SECONDS", "0")
    verifier = jwks_verifier(monkeypatch, old.jwk())
    old_token = old.sign(KEYCLOAK_STAFF)
    assert verifier.verify(old_token).subject == "u1"
    assert verifier._jwks is not None
    monkeypatch.setattr(verifier._jwks, "fetch_data", lambda: {"keys": [new.jwk()]})
    assert verifier.verify(new.sign(KEYCLOAK_STAFF)).subject == "u1"
    with pytest.raises(Problem) as refused:
        verifier.verify(old_token)
    assert refused.value.status == 401


def test_production_ignores_locally_signed_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """In production an HS256 token is refused even by a verifier built with a local key."""
    idp = Provider()
    verifier = jwks_verifier(monkeypatch, idp.jwk(), environment="production")
    with pytest.raises(Problem) as refused:
        verifier.verify(token_for([PADERBORN], "staff"))
    assert refused.value.status == 401
    assert verifier.verify(idp.sign(KEYCLOAK_STAFF)).roles == {"staff"}


def test_the_claims_mapping_ignores_unknown_roles() -> None:
    """Keycloak's default roles (offline_access, ...) are not platform roles."""
    principal = principal_from_claims(
        {"sub": "u", "realm_access": {"roles": ["default-roles-engagiert", "reader"]}, "municipalities": ["*"]},
        roles_claim="realm_access",
    )
    assert principal.roles == {"reader"}
    assert principal.may_act_for(BIELEFELD)


def test_an_unreachable_jwks_answers_503_not_401(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the provider's keys cannot be fetched the caller learns that sign-in is unavailable."""
    idp = Provider()
    verifier = jwks_verifier(monkeypatch, idp.jwk())
    assert verifier._jwks is not None

    def unreachable() -> dict[str, Any]:
        raise jwt.PyJWKClientConnectionError("connection refused")

    monkeypatch.setattr(verifier._jwks, "fetch_data", unreachable)
    response = app(verifier).get(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(idp.sign(KEYCLOAK_STAFF)))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert (
        app(verifier)
        .get(f"/v1/municipalities/{PADERBORN}/members", headers=bearer(token_for([PADERBORN], "staff")))
        .status_code
        == 200
    )

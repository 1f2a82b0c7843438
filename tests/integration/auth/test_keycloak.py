"""Sign-in on the real Keycloak: a registry process verifies tokens through the JWKS as in production.

The tests import the repo's realm file under a throwaway name (so the shared realm ``engagiert``
and its keys are never touched) and start the registry trusting that realm. Tokens come from
Keycloak by the password grant of its local users. Refused with 401: a token of another realm, an
expired one, one for another audience, one whose key was rotated out; a Bielefeld token sees none
of Paderborn (404), a reader cannot write (403).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from engagiert.shared.testing import ServiceProcess, StackEndpoints, fresh_registry
from engagiert.shared.testing.keycloak import Keycloak, bearer
from engagiert.shared.testing.stack import REPO_ROOT

pytestmark = pytest.mark.integration

PADERBORN, BIELEFELD = "05774032", "05711000"
REALM_FILE = REPO_ROOT / "deploy" / "local" / "keycloak" / "engagiert-realm.json"


@dataclass(frozen=True)
class Realm:
    """A throwaway copy of the repo's realm on the running Keycloak."""

    keycloak: Keycloak
    name: str
    id: str

    def token(self, user: str) -> str:
        """Return an access token of a local user of this realm."""
        return self.keycloak.password_token(user, realm=self.name)

    def admin(self) -> httpx.Client:
        """Return an admin API client for this realm (``/admin/realms/<name>``)."""
        return self.keycloak.admin(self.name)


@pytest.fixture(scope="module")
def keycloak(stack: StackEndpoints) -> Keycloak:
    """Give the stack's Keycloak; skip when the stack has none (the local stack always has one)."""
    if stack.keycloak_issuer is None:
        pytest.skip("no Keycloak in this stack (KEYCLOAK_ISSUER is not set)")
    return Keycloak.from_issuer(stack.keycloak_issuer)


@pytest.fixture(scope="module")
def realm(keycloak: Keycloak) -> Iterator[Realm]:
    """Import the repo's realm file as ``engagiert-test-<random>``; delete it afterwards."""
    name = f"engagiert-test-{uuid.uuid4().hex[:8]}"
    representation = json.loads(REALM_FILE.read_text())
    representation["realm"] = name
    with keycloak.admin() as admin:
        created = admin.post("", json=representation)
        assert created.status_code == 201, created.text
        realm_id = admin.get(f"/{name}").json()["id"]
    try:
        yield Realm(keycloak, name, realm_id)
    finally:
        with keycloak.admin() as admin:
            admin.delete(f"/{name}")


@pytest.fixture(scope="module")
def registry(stack: StackEndpoints, realm: Realm) -> Iterator[httpx.Client]:
    """Run the registry as a process trusting the throwaway realm; give an HTTP client for it."""
    run = uuid.uuid4().hex[:8]
    group = f"auth-registry-{run}"
    isolation = asyncio.run(fresh_registry(stack.kafka_bootstrap_servers, group=group, run=run))
    env = {
        **stack.env(),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "REGISTRY_MONGODB_DATABASE": f"auth_registry_{run}",
        "REGISTRY_CONSUMER_GROUP": group,
        **isolation,
        "AUTH_ISSUER": realm.keycloak.issuer(realm.name),
        "AUTH_JWKS_URL": realm.keycloak.jwks_url(realm.name),
        # A rotated-in key is fetched on its first token; the production default waits up to 10 s.
        "AUTH_JWKS_COOLDOWN_SECONDS": "1",
    }
    proc = ServiceProcess("engagiert.registry.main", env=env).start(wait_ready=90)
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            admin = realm.token("network-admin")
            created = client.post("/v1/municipalities", headers=bearer(admin), json={"ags": PADERBORN, "name": "Stadt Paderborn", "kind": "Stadt"})  # fmt: skip
            assert created.status_code == 201, created.text
            yield client
    finally:
        proc.stop()


ORGANISATIONS = f"/v1/municipalities/{PADERBORN}/organisations"


def refused(response: httpx.Response) -> str:
    """Assert a 401 problem and return its detail."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["detail"])


def test_staff_of_paderborn_write_readers_read_bielefeld_sees_nothing(realm: Realm, registry: httpx.Client) -> None:
    """Keycloak's roles and municipalities scope every request: 201, 403 for a reader, 404 for Bielefeld."""
    staff, reader = bearer(realm.token("paderborn-staff")), bearer(realm.token("paderborn-reader"))
    bielefeld, owl = bearer(realm.token("bielefeld-staff")), bearer(realm.token("owl-staff"))
    org = registry.post(ORGANISATIONS, headers=staff, json={"name": "Paderborner Tafel", "kind": "Initiative", "fields": ["Soziales"]})  # fmt: skip
    assert org.status_code == 201, org.text
    one = f"{ORGANISATIONS}/{org.json()['id']}"

    assert registry.get(one, headers=reader).status_code == 200
    assert registry.get(one, headers=owl).status_code == 200
    written = registry.post(ORGANISATIONS, headers=reader, json={"name": "Nicht erlaubt", "kind": "Verein", "fields": ["Sport"]})  # fmt: skip
    assert written.status_code == 403, written.text
    for path in (one, ORGANISATIONS, f"/v1/municipalities/{PADERBORN}/members"):
        answer = registry.get(path, headers=bielefeld)
        assert answer.status_code == 404, (path, answer.text)
    assert registry.get("/v1/municipalities", headers=staff).status_code == 403


def test_a_token_of_another_realm_is_refused(keycloak: Keycloak, registry: httpx.Client) -> None:
    """The shared realm's own paderborn-staff (same users, same claims, another issuer and key) gets 401."""
    foreign = keycloak.password_token("paderborn-staff")
    assert jwt.decode(foreign, options={"verify_signature": False})["municipalities"] == [PADERBORN]
    refused(registry.get(ORGANISATIONS, headers=bearer(foreign)))


def _client(realm: Realm, client_id: str, *, audience: bool, attributes: dict[str, str] | None = None) -> None:
    """Create a public password-grant client in ``realm`` with the municipalities mapper (and the audience one)."""
    source = next(c for c in json.loads(REALM_FILE.read_text())["clients"] if c["clientId"] == "engagiert-cli")
    mappers = [m for m in source["protocolMappers"] if audience or m["protocolMapper"] != "oidc-audience-mapper"]
    with realm.admin() as admin:
        answer = admin.post("/clients", json={**source, "clientId": client_id, "protocolMappers": mappers,
                                              "attributes": {**source["attributes"], **(attributes or {})}})  # fmt: skip
        assert answer.status_code == 201, answer.text


def test_an_expired_token_is_refused(realm: Realm, registry: httpx.Client) -> None:
    """A token of a client whose tokens live 2 s is accepted, then refused once expired."""
    _client(realm, "short-lived", audience=True, attributes={"access.token.lifespan": "2"})
    token = realm.keycloak.password_token("paderborn-staff", realm=realm.name, client_id="short-lived")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 2
    assert registry.get(ORGANISATIONS, headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, claims["exp"] - time.time()) + 1.1)
    assert "expired" in refused(registry.get(ORGANISATIONS, headers=bearer(token)))


def test_a_token_for_another_audience_is_refused(realm: Realm, registry: httpx.Client) -> None:
    """A token of the same realm without the audience 'engagiert' (another application's) gets 401."""
    _client(realm, "another-app", audience=False)
    token = realm.keycloak.password_token("paderborn-staff", realm=realm.name, client_id="another-app")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "engagiert" not in claims.get("aud", [])
    assert claims["municipalities"] == [PADERBORN]
    assert "audience" in refused(registry.get(ORGANISATIONS, headers=bearer(token))).lower()


def _rsa_signing_providers(admin: httpx.Client, realm: Realm) -> list[dict[str, Any]]:
    components = admin.get("/components", params={"parent": realm.id, "type": "org.keycloak.keys.KeyProvider"})
    assert components.status_code == 200, components.text
    return [c for c in components.json() if c["providerId"] == "rsa-generated"]


def test_a_token_whose_key_was_rotated_out_is_refused(realm: Realm, registry: httpx.Client) -> None:
    """After a key rotation (new RSA key with higher priority, the old one removed) only new tokens pass."""
    old = realm.token("paderborn-staff")
    assert registry.get(ORGANISATIONS, headers=bearer(old)).status_code == 200
    with realm.admin() as admin:
        previous = _rsa_signing_providers(admin, realm)
        assert previous, "the realm has no generated RSA key"
        added = admin.post("/components", json={
            "name": "rsa-rotated", "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm.id,
            "config": {"priority": ["500"], "keySize": ["2048"], "algorithm": ["RS256"], "active": ["true"], "enabled": ["true"]},
        })  # fmt: skip
        assert added.status_code == 201, added.text
        for provider in previous:
            assert admin.delete(f"/components/{provider['id']}").status_code == 204
    new = realm.token("paderborn-staff")
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    time.sleep(1.1)  # the cooldown since the key set was last fetched (AUTH_JWKS_COOLDOWN_SECONDS=1)
    assert registry.get(ORGANISATIONS, headers=bearer(new)).status_code == 200
    refused(registry.get(ORGANISATIONS, headers=bearer(old)))

"""Gets tokens from the local Keycloak (realm ``engagiert``) and drives its admin API, for tests and ``make token``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

LOCAL_ISSUER = "http://127.0.0.1:8080/realms/engagiert"
LOCAL_PASSWORD = "engagiert"  # noqa: S105 - every local user's password (deploy/local/keycloak/engagiert-realm.json)
CLI_CLIENT = "engagiert-cli"


@dataclass(frozen=True)
class Keycloak:
    """A running Keycloak: its base URL and the master realm's administrator."""

    url: str
    admin_user: str = "admin"
    admin_password: str = "engagiert-admin"  # noqa: S105 - the local stack's, see deploy/local/README.md

    @classmethod
    def from_issuer(cls, issuer: str) -> Keycloak:
        """Return the Keycloak of ``issuer`` (``<url>/realms/<realm>``), admin from ``KEYCLOAK_ADMIN_*``."""
        return cls(
            url=issuer.split("/realms/", 1)[0],
            admin_user=os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
            admin_password=os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "engagiert-admin"),
        )

    def issuer(self, realm: str = "engagiert") -> str:
        """Return the issuer of ``realm``."""
        return f"{self.url}/realms/{realm}"

    def jwks_url(self, realm: str = "engagiert") -> str:
        """Return the JWKS URL of ``realm``."""
        return f"{self.issuer(realm)}/protocol/openid-connect/certs"

    def token_response(self, realm: str = "engagiert", **form: str) -> dict[str, Any]:
        """Return the token endpoint's answer to ``form``; raise with Keycloak's error otherwise."""
        response = httpx.post(f"{self.issuer(realm)}/protocol/openid-connect/token", data=form, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"Keycloak refused the token request ({response.status_code}): {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    def password_token(
        self, username: str, *, password: str = LOCAL_PASSWORD, realm: str = "engagiert", client_id: str = CLI_CLIENT
    ) -> str:
        """Return an access token for a local user (password grant on the public CLI client)."""
        answer = self.token_response(
            realm, grant_type="password", client_id=client_id, username=username, password=password, scope="openid"
        )
        return str(answer["access_token"])

    def client_token(self, client_id: str, secret: str, *, realm: str = "engagiert") -> str:
        """Return an access token of a connected system (client credentials)."""
        answer = self.token_response(realm, grant_type="client_credentials", client_id=client_id, client_secret=secret)
        return str(answer["access_token"])

    def admin(self, realm: str | None = None) -> httpx.Client:
        """Return an HTTP client for ``<url>/admin/realms[/<realm>]`` signed in as the master realm's administrator."""
        token = self.password_token(
            self.admin_user, password=self.admin_password, realm="master", client_id="admin-cli"
        )
        base = f"{self.url}/admin/realms" + (f"/{realm}" if realm else "")
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def local_keycloak() -> Keycloak | None:
    """Return the Keycloak named by ``KEYCLOAK_ISSUER`` (as ``stack.sh env`` prints it), or None."""
    issuer = os.environ.get("KEYCLOAK_ISSUER")
    return Keycloak.from_issuer(issuer) if issuer else None


def bearer(token: str) -> dict[str, str]:
    """Return an ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}

"""Signs staff in with OpenID Connect (authorization code + PKCE S256) through Authlib's Starlette client.

The provider (Keycloak locally, the operator's in production) is found by discovery. After the
code exchange the tokens stay in the server-side session; the access token is what the console
sends to the services, refreshed with the refresh token shortly before it expires. Logout ends
the provider's session too (RP-initiated logout at its ``end_session_endpoint``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import RedirectResponse

from engagiert.console.config import ConsoleSettings

PROVIDER = "oidc"

__all__ = ["OAuthError", "Oidc", "Tokens", "User"]


@dataclass(frozen=True, slots=True)
class User:
    """Who is signed in: read from the access token the provider issued (the services verify it)."""

    subject: str
    username: str
    name: str
    roles: frozenset[str]
    municipalities: tuple[str, ...]

    @property
    def can_write(self) -> bool:
        """Return whether the user may change data (staff); readers and network admins only read here."""
        return "staff" in self.roles

    @property
    def all_municipalities(self) -> bool:
        """Return whether the user may act for every municipality (``*``)."""
        return "*" in self.municipalities

    @property
    def is_network_admin(self) -> bool:
        """Return whether the user manages the network's municipalities."""
        return "network-admin" in self.roles

    def may_act_for(self, ags: str) -> bool:
        """Return whether the user may open municipality ``ags``."""
        return self.all_municipalities or ags in self.municipalities

    def to_session(self) -> dict[str, Any]:
        """Return the user as stored in the session."""
        return {
            "subject": self.subject,
            "username": self.username,
            "name": self.name,
            "roles": sorted(self.roles),
            "municipalities": list(self.municipalities),
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> User:
        """Return the user stored by :meth:`to_session`."""
        return cls(
            subject=data["subject"],
            username=data["username"],
            name=data["name"],
            roles=frozenset(data["roles"]),
            municipalities=tuple(data["municipalities"]),
        )

    @classmethod
    def from_access_token(cls, access_token: str) -> User:
        """Return the user described by an access token just received from the provider's token endpoint.

        The signature is not checked here: the token came over the back channel from the provider
        itself, and every service verifies it (JWKS) on each call.
        """
        claims = jwt.decode(access_token, options={"verify_signature": False})
        roles = claims.get("roles") or (claims.get("realm_access") or {}).get("roles") or []
        municipalities = claims.get("municipalities") or []
        if isinstance(municipalities, str):
            municipalities = [municipalities]
        username = str(claims.get("preferred_username") or claims.get("sub"))
        return cls(
            subject=str(claims["sub"]),
            username=username,
            name=str(claims.get("name") or username),
            roles=frozenset(str(r) for r in roles),
            municipalities=tuple(sorted(str(m) for m in municipalities)),
        )


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens of a session."""

    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_at: float

    def expiring(self, *, margin: float, now: float | None = None) -> bool:
        """Return whether the access token expires within ``margin`` seconds (a page makes several calls)."""
        return (now or time.time()) >= self.expires_at - margin

    def to_session(self) -> dict[str, Any]:
        """Return the tokens as stored in the session."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Tokens:
        """Return the tokens stored by :meth:`to_session`."""
        return cls(**data)

    @classmethod
    def from_response(cls, token: dict[str, Any], *, previous: Tokens | None = None) -> Tokens:
        """Return the tokens of a token endpoint answer (a refresh may omit the ID and refresh tokens)."""
        expires_at = token.get("expires_at") or time.time() + float(token.get("expires_in", 300))
        return cls(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token") or (previous.refresh_token if previous else None),
            id_token=token.get("id_token") or (previous.id_token if previous else None),
            expires_at=float(expires_at),
        )


class Oidc:
    """The console's OpenID Connect client of one provider."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self._settings = settings
        self._oauth = OAuth()
        self._oauth.register(
            name=PROVIDER,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            server_metadata_url=settings.discovery_url,
            client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256", "timeout": 15},
        )
        self.client: Any = self._oauth.create_client(PROVIDER)

    @property
    def callback_url(self) -> str:
        """Return the redirect URI registered at the provider."""
        return self._settings.public_base_url.rstrip("/") + "/auth/callback"

    async def metadata(self) -> dict[str, Any]:
        """Return the provider's discovery document (loaded once)."""
        data: dict[str, Any] = await self.client.load_server_metadata()
        return data

    async def login_redirect(self, request: Request, *, ui_locales: str) -> RedirectResponse:
        """Return the redirect to the provider's login page; state, nonce and PKCE verifier go to the session."""
        response: RedirectResponse = await self.client.authorize_redirect(
            request, self.callback_url, ui_locales=ui_locales
        )
        return response

    async def finish_login(self, request: Request) -> Tokens:
        """Exchange the callback's code (with the PKCE verifier) for tokens; OAuthError when refused."""
        token: dict[str, Any] = await self.client.authorize_access_token(request)
        return Tokens.from_response(token)

    async def refresh(self, tokens: Tokens) -> Tokens:
        """Return fresh tokens for a refresh token; OAuthError when the provider refuses (session ended)."""
        if not tokens.refresh_token:
            raise OAuthError(error="no_refresh_token")
        token: dict[str, Any] = await self.client.fetch_access_token(
            grant_type="refresh_token", refresh_token=tokens.refresh_token
        )
        return Tokens.from_response(token, previous=tokens)

    async def logout_url(self, *, id_token: str | None, post_logout_redirect_uri: str) -> str:
        """Return the provider's end-session URL that ends its session and comes back to the console."""
        result: dict[str, Any] = await self.client.create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri,
            id_token_hint=id_token,
            client_id=self._settings.oidc_client_id,
        )
        return str(result["url"])

"""Verifies bearer tokens and scopes every request to the caller's municipalities.

Tokens are JWTs. In production they come from an OIDC provider (Keycloak, say) and are checked
against its JWKS (``AUTH_JWKS_URL``, RS256/ES256). For local use and tests the platform signs
tokens itself with a local key (HS256, ``AUTH_LOCAL_KEY``); settings refuse the well-known
local key when ``ENVIRONMENT=production``. Mint one with::

    uv run python -m engagiert.shared.auth mint --municipality 05774032 --role staff

Claims: ``sub``, ``municipalities`` (AGS list; ``"*"`` for every one), ``roles``
(``staff``, ``reader``, ``network-admin``, ``system``), ``iss``, ``aud``, ``exp``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engagiert.shared.problems import Problem
from engagiert.shared.settings import LOCAL_AUTH_KEY, ServiceSettings

Role = Literal["staff", "reader", "network-admin", "system"]
ROLES: tuple[Role, ...] = ("staff", "reader", "network-admin", "system")
ALL_MUNICIPALITIES = "*"

# Roles that imply others: staff may read what readers read.
_IMPLIED: dict[str, set[str]] = {"staff": {"reader"}, "network-admin": {"reader"}}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: the subject, the municipalities they may act for, their roles."""

    subject: str
    municipalities: frozenset[str]
    roles: frozenset[str]

    def may_act_for(self, ags: str) -> bool:
        """Return True when the caller may act for municipality ``ags``."""
        return ALL_MUNICIPALITIES in self.municipalities or ags in self.municipalities

    def has_role(self, role: str) -> bool:
        """Return True when the caller has ``role``, directly or implied."""
        if role in self.roles:
            return True
        return any(role in _IMPLIED.get(r, set()) for r in self.roles)


class TokenVerifier:
    """Verifies JWTs against a JWKS URL or the local key."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._local_key = settings.auth_local_key.get_secret_value() if settings.auth_local_key else ""
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True) if settings.auth_jwks_url else None

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid token; raise a 401 problem otherwise."""
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg == "HS256" and self._local_key:
                key: Any = self._local_key
            elif self._jwks is not None and alg in ("RS256", "ES256", "PS256"):
                key = self._jwks.get_signing_key_from_jwt(token).key
            else:
                raise jwt.InvalidAlgorithmError(f"tokens signed with {alg} are not accepted here")
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer if alg == "HS256" else None,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Problem(401, "Invalid token", f"the bearer token was refused: {exc}") from None
        municipalities = claims.get("municipalities") or []
        roles = claims.get("roles") or claims.get("realm_access", {}).get("roles") or []
        if not isinstance(municipalities, list) or not isinstance(roles, list):
            raise Problem(401, "Invalid token", "claims 'municipalities' and 'roles' must be lists")
        return Principal(
            subject=str(claims["sub"]),
            municipalities=frozenset(str(m) for m in municipalities),
            roles=frozenset(str(r) for r in roles if r in ROLES),
        )


def mint_token(
    *,
    key: str,
    subject: str,
    municipalities: Iterable[str],
    roles: Iterable[str],
    issuer: str = "engagiert-local",
    audience: str = "engagiert",
    ttl_seconds: int = 8 * 3600,
) -> str:
    """Return a locally signed token (HS256) for local use and tests."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "municipalities": list(municipalities),
        "roles": list(roles),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, key, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False)


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the caller; a request without a valid bearer token gets a 401 problem."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Authentication required", "send 'Authorization: Bearer <token>'")
    return _verifier(request).verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(role: str) -> Callable[..., Principal]:
    """Return a dependency: the caller must have ``role``; no municipality scope (e.g. network-admin)."""

    def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(role):
            raise Problem(403, "Forbidden", f"this needs the role '{role}'")
        return principal

    return dependency


def scoped(role: str) -> Callable[..., Principal]:
    """Return a dependency for routes under ``/v1/municipalities/{ags}``: role and municipality scope.

    A caller who may not act for ``ags`` gets a 404, the same answer as for an unknown
    municipality, so that no id's existence is confirmed across municipalities.
    """

    def dependency(ags: str, principal: CurrentPrincipal) -> Principal:
        if not principal.may_act_for(ags):
            raise Problem(404, "Not found", "no such resource")
        if not principal.has_role(role):
            raise Problem(403, "Forbidden", f"this needs the role '{role}'")
        return principal

    return dependency


Staff = Annotated[Principal, Depends(scoped("staff"))]
"""A route parameter: the caller may write for the path's municipality."""
Reader = Annotated[Principal, Depends(scoped("reader"))]
"""A route parameter: the caller may read the path's municipality."""
NetworkAdmin = Annotated[Principal, Depends(require("network-admin"))]
"""A route parameter: the caller manages the network's municipalities."""


def main(argv: list[str] | None = None) -> None:
    """Mint a local token: ``python -m engagiert.shared.auth mint --municipality 05774032 --role staff``."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.shared.auth", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    mint = sub.add_parser("mint", help="print a token signed with the local key")
    mint.add_argument("--subject", default="local-staff")
    mint.add_argument("--municipality", action="append", default=[], help="AGS; repeat; '*' for all")
    mint.add_argument("--role", action="append", default=[], choices=ROLES)
    mint.add_argument("--ttl", type=int, default=8 * 3600, help="seconds")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    key = settings.auth_local_key.get_secret_value() if settings.auth_local_key else LOCAL_AUTH_KEY
    print(
        mint_token(
            key=key,
            subject=args.subject,
            municipalities=args.municipality or ["05774032"],
            roles=args.role or ["staff"],
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            ttl_seconds=args.ttl,
        )
    )


if __name__ == "__main__":
    main()

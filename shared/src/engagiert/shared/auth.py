"""Verifies bearer tokens and scopes every request to the caller's municipalities.

Tokens are JWTs. In production they come from an OIDC provider (Keycloak) and are verified
against its JWKS (``AUTH_JWKS_URL``) and issuer (``AUTH_ISSUER``): the algorithm is pinned by the
key's type (RS256 for an RSA key unless the key names another RSA algorithm; never taken from the
token's header alone), issuer and audience (``AUTH_AUDIENCE``) are checked, and the key set is
fetched again after ``AUTH_JWKS_LIFESPAN_SECONDS`` and when a token names an unknown ``kid`` (at
most once per ``AUTH_JWKS_COOLDOWN_SECONDS``). Keycloak's claims map to the platform's:
``realm_access.roles`` to roles, ``municipalities`` (a list of AGS; ``"*"`` for every one) to
municipalities; any other shape is a 401.

Outside production the platform also accepts tokens it signs itself with a local key (HS256,
``AUTH_LOCAL_KEY``, issuer ``AUTH_LOCAL_ISSUER``) with a top-level ``roles`` claim, for scripts and
tests; production refuses them (settings refuse a local key there). Mint one with::

    uv run python -m engagiert.shared.auth mint --municipality 05774032 --role staff

Roles: ``staff``, ``reader``, ``network-admin``, ``system``; other roles in a token are ignored.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engagiert.shared.logging import get_logger
from engagiert.shared.problems import Problem
from engagiert.shared.settings import LOCAL_AUTH_KEY, ServiceSettings

Role = Literal["staff", "reader", "network-admin", "system"]
ROLES: tuple[Role, ...] = ("staff", "reader", "network-admin", "system")
ALL_MUNICIPALITIES = "*"
_AGS = re.compile(r"[0-9]{8}")

# Roles that imply others: staff may read what readers read.
_IMPLIED: dict[str, set[str]] = {"staff": {"reader"}, "network-admin": {"reader"}}

# The algorithms a key of each type may verify: the key decides, never the token's header.
# Symmetric ("oct") keys from a JWKS are never accepted.
_ALGORITHMS_BY_KEY_TYPE: dict[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}

log = get_logger(__name__)


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


def _refused(detail: str) -> Problem:
    return Problem(401, "Invalid token", f"the bearer token was refused: {detail}")


def _string_list(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def pinned_algorithm(key: jwt.PyJWK) -> str:
    """Return the one algorithm ``key`` verifies: its own ``alg`` if that fits its type, else the type's default."""
    allowed = _ALGORITHMS_BY_KEY_TYPE.get(str(key.key_type))
    if allowed is None:
        raise jwt.InvalidKeyError(f"keys of type {key.key_type} are not accepted")
    if key.algorithm_name not in allowed:
        raise jwt.InvalidKeyError(f"key {key.key_id} names {key.algorithm_name}, not an algorithm for {key.key_type}")
    return key.algorithm_name


def principal_from_claims(claims: dict[str, Any], *, roles_claim: Literal["realm_access", "roles"]) -> Principal:
    """Return the principal of verified ``claims``; raise a 401 problem for any unexpected shape.

    ``roles_claim`` names where the roles are: Keycloak's ``realm_access.roles`` or the local
    tokens' top-level ``roles``.
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _refused("claim 'sub' must be a non-empty string")
    if roles_claim == "realm_access":
        realm_access = claims.get("realm_access", {})
        if not isinstance(realm_access, dict):
            raise _refused("claim 'realm_access' must be an object with a list 'roles'")
        roles = _string_list(realm_access.get("roles", []))
        if roles is None:
            raise _refused("claim 'realm_access.roles' must be a list of strings")
    else:
        roles = _string_list(claims.get("roles", []))
        if roles is None:
            raise _refused("claim 'roles' must be a list of strings")
    municipalities = _string_list(claims.get("municipalities", []))
    if municipalities is None:
        raise _refused("claim 'municipalities' must be a list of AGS strings")
    if any(m != ALL_MUNICIPALITIES and not _AGS.fullmatch(m) for m in municipalities):
        raise _refused("claim 'municipalities' must hold 8-digit AGS or '*'")
    return Principal(
        subject=subject,
        municipalities=frozenset(municipalities),
        roles=frozenset(r for r in roles if r in ROLES),
    )


class TokenVerifier:
    """Verifies JWTs: Keycloak's (or any OIDC provider's) through its JWKS, local ones with the local key."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._audience = settings.auth_audience
        self._issuer = settings.auth_issuer
        self._local_issuer = settings.auth_local_issuer
        local_key = settings.auth_local_key.get_secret_value() if settings.auth_local_key else ""
        # Production never accepts HS256, whatever the settings say (they refuse a key there anyway).
        self._local_key = "" if settings.environment == "production" else local_key
        self._jwks = (
            jwt.PyJWKClient(
                settings.auth_jwks_url,
                cache_keys=False,  # the per-kid cache never expires; the key set's cache does
                cache_jwk_set=True,
                lifespan=settings.auth_jwks_lifespan_seconds,
                cooldown_duration=settings.auth_jwks_cooldown_seconds,
                timeout=settings.auth_jwks_timeout_seconds,
            )
            if settings.auth_jwks_url
            else None
        )

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid token; raise a 401 problem otherwise (503 if the JWKS is unreachable)."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "HS256" and self._local_key:
                claims = jwt.decode(
                    token,
                    self._local_key,
                    algorithms=["HS256"],
                    audience=self._audience,
                    issuer=self._local_issuer,
                    options={"require": ["exp", "sub", "iss", "aud"]},
                )
                return principal_from_claims(claims, roles_claim="roles")
            if self._jwks is None:
                raise jwt.InvalidAlgorithmError(f"tokens signed with {header.get('alg')} are not accepted here")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise jwt.InvalidTokenError("the token names no key ('kid')")
            key = self._jwks.get_signing_key(kid)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[pinned_algorithm(key)],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWKClientConnectionError:
            log.warning("auth.jwks_unreachable", jwks_url=self._jwks.uri if self._jwks else None)
            raise Problem(503, "Sign-in unavailable", "the identity provider's keys could not be fetched") from None
        except jwt.PyJWTError as exc:
            raise _refused(str(exc)) from None
        return principal_from_claims(claims, roles_claim="realm_access")


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


# Which local Keycloak user `token` signs in as for a role and municipalities (deploy/local/README.md).
_LOCAL_USERS: dict[tuple[str, tuple[str, ...]], str] = {
    ("staff", ("05774032",)): "paderborn-staff",
    ("reader", ("05774032",)): "paderborn-reader",
    ("staff", ("05711000",)): "bielefeld-staff",
    ("staff", ("05711000", "05774032")): "owl-staff",
    ("network-admin", ("*",)): "network-admin",
}
_LOCAL_SYSTEM = ("system-vereinsverwaltung", "engagiert-system-local-secret")  # role system, AGS 05774032


def _keycloak_token(*, issuer: str, user: str | None, role: str, municipalities: list[str], password: str) -> str:
    """Return a local Keycloak access token for ``user``, or for the local user with ``role`` and ``municipalities``."""
    from engagiert.shared.testing.keycloak import Keycloak

    keycloak = Keycloak.from_issuer(issuer)
    realm = issuer.rstrip("/").rsplit("/", 1)[-1]
    if user is None and role == "system" and municipalities == ["05774032"]:
        return keycloak.client_token(*_LOCAL_SYSTEM, realm=realm)
    if user is None:
        wanted = ["*"] if role == "network-admin" else sorted(municipalities)
        user = _LOCAL_USERS.get((role, tuple(wanted)))
    if user is None:
        known = ", ".join(f"ROLE={r} AGS={','.join(m)}" for r, m in _LOCAL_USERS) + ", ROLE=system AGS=05774032"
        raise SystemExit(f"no local user has role {role} for {','.join(municipalities)}; known: {known}")
    return keycloak.password_token(user, password=password, realm=realm)


def main(argv: list[str] | None = None) -> None:
    """Print a bearer token: ``token`` from the local Keycloak, ``mint`` signed with the local key."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.shared.auth", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="print an access token of the local Keycloak (password grant)")
    token.add_argument("--user", help="a local user (default: the one with --role and --municipality)")
    token.add_argument("--password", default="engagiert", help="the local users' password")
    token.add_argument("--municipality", action="append", default=[], help="AGS; repeat; '*' for all")
    token.add_argument("--role", default="staff", choices=ROLES)
    token.add_argument("--issuer", default=os.environ.get("KEYCLOAK_ISSUER", "http://127.0.0.1:8080/realms/engagiert"))
    mint = sub.add_parser("mint", help="print a token signed with the local key (not accepted in production)")
    mint.add_argument("--subject", default="local-staff")
    mint.add_argument("--municipality", action="append", default=[], help="AGS; repeat; '*' for all")
    mint.add_argument("--role", action="append", default=[], choices=ROLES)
    mint.add_argument("--ttl", type=int, default=8 * 3600, help="seconds")
    args = parser.parse_args(argv)
    if args.command == "token":
        municipalities = [m for arg in args.municipality for m in arg.split(",") if m] or ["05774032"]
        print(
            _keycloak_token(
                issuer=args.issuer,
                user=args.user,
                role=args.role,
                municipalities=municipalities,
                password=args.password,
            )
        )
        return
    settings = ServiceSettings()
    key = settings.auth_local_key.get_secret_value() if settings.auth_local_key else LOCAL_AUTH_KEY
    print(
        mint_token(
            key=key,
            subject=args.subject,
            municipalities=args.municipality or ["05774032"],
            roles=args.role or ["staff"],
            issuer=settings.auth_local_issuer,
            audience=settings.auth_audience,
            ttl_seconds=args.ttl,
        )
    )


if __name__ == "__main__":
    main()

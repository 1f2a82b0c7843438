"""The pages' dependencies: the signed-in user, fresh tokens, the service clients, the municipality."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request

from engagiert.console import clients
from engagiert.console.errors import LoginRequired, MunicipalityMissing, PageForbidden, PageNotFound
from engagiert.console.oidc import OAuthError, Oidc, Tokens, User
from engagiert.shared.logging import get_logger

log = get_logger(__name__)

USER_KEY = "user"
TOKENS_KEY = "tokens"
_NAME_TTL_SECONDS = 300.0


def signed_in(request: Request) -> User:
    """Return the signed-in user; anyone else is sent to sign in."""
    data = request.session.get(USER_KEY)
    if not data or TOKENS_KEY not in request.session:
        raise LoginRequired
    user = User.from_session(data)
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(signed_in)]


def staff(user: CurrentUser) -> User:
    """Return the user when they may change data; a reader gets the 403 page (the services refuse too)."""
    if not user.can_write:
        raise PageForbidden
    return user


StaffUser = Annotated[User, Depends(staff)]


async def access_token(request: Request, user: CurrentUser) -> str:
    """Return a valid access token of the session, refreshed when it is about to expire."""
    tokens = Tokens.from_session(request.session[TOKENS_KEY])
    if tokens.expiring(margin=request.app.state.settings.oidc_refresh_margin_seconds):
        oidc: Oidc = request.app.state.oidc
        try:
            tokens = await oidc.refresh(tokens)
        except (OAuthError, httpx.HTTPError) as exc:
            log.info("token_refresh_refused", error=type(exc).__name__)
            request.session.clear()
            raise LoginRequired from None
        request.session[TOKENS_KEY] = tokens.to_session()
        log.info("token_refreshed", expires_in=round(tokens.expires_at - time.time()))
    return tokens.access_token


def services(request: Request, token: Annotated[str, Depends(access_token)]) -> clients.Services:
    """Return the three service clients for this request, with the user's access token."""
    return clients.Services(request.app.state.http, token)


Services = Annotated[clients.Services, Depends(services)]


@dataclass(frozen=True, slots=True)
class Tenant:
    """The municipality a page is about."""

    ags: str
    name: str


async def tenant(ags: str, request: Request, user: CurrentUser, api: Services) -> Tenant:
    """Return the path's municipality; one outside the user's gets "nicht gefunden", as the services answer."""
    if not user.may_act_for(ags):
        raise PageNotFound
    names: dict[str, tuple[float, str]] = request.app.state.municipality_names
    cached = names.get(ags)
    if cached is None or time.monotonic() - cached[0] > _NAME_TTL_SECONDS:
        try:
            municipality = await api.registry.municipality(ags)
        except clients.NotFound:
            # One of the user's own municipalities: saying it is missing confirms nothing to anyone else.
            raise MunicipalityMissing from None
        cached = (time.monotonic(), municipality.name)
        names[ags] = cached
    found = Tenant(ags=ags, name=cached[1])
    request.state.tenant = found
    request.state.switch_choices = await _choices(request, user, api)
    return found


async def _choices(request: Request, user: User, api: clients.Services) -> list[Tenant]:
    """Return the municipalities the switcher offers (none for a user with one municipality)."""
    if not user.all_municipalities and len(user.municipalities) < 2:
        return []
    names: dict[str, tuple[float, str]] = request.app.state.municipality_names
    if user.all_municipalities:
        for m in await api.registry.municipalities():
            names[m.id] = (time.monotonic(), m.name)
        return sorted((Tenant(ags=a, name=n) for a, (_, n) in names.items()), key=lambda t: t.name)
    found: list[Tenant] = []
    for ags in user.municipalities:
        if ags not in names:
            try:
                names[ags] = (time.monotonic(), (await api.registry.municipality(ags)).name)
            except clients.NotFound:
                continue
        found.append(Tenant(ags=ags, name=names[ags][1]))
    return sorted(found, key=lambda t: t.name)


CurrentTenant = Annotated[Tenant, Depends(tenant)]

"""Mints local tokens for tests."""

from __future__ import annotations

from collections.abc import Iterable

from engagiert.shared.auth import mint_token
from engagiert.shared.settings import LOCAL_AUTH_KEY


def token_for(municipalities: Iterable[str], *roles: str, subject: str = "test-user") -> str:
    """Return a bearer token for ``municipalities`` with ``roles`` (default: staff)."""
    return mint_token(
        key=LOCAL_AUTH_KEY,
        subject=subject,
        municipalities=list(municipalities),
        roles=list(roles) or ["staff"],
    )


def auth_header(municipalities: Iterable[str], *roles: str) -> dict[str, str]:
    """Return an ``Authorization`` header for ``municipalities`` with ``roles``."""
    return {"Authorization": f"Bearer {token_for(municipalities, *roles)}"}

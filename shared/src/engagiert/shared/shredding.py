"""Encrypts a member's personal data with a key of their own, so erasure can shred every copy at once.

Crypto-shredding: the registry seals the personal fields of every member fact it writes
(names, birth date, contact, external ids) with AES-256-GCM under a key per member. The
associated data binds a ciphertext to its member, municipality and field, so a sealed value
copied into another member's record does not open. The keys live only in the registry's
database (collection ``member_keys``); events and notifications fetch them over HTTP
(``POST /internal/v1/member-keys`` with the service token) and cache them in memory. Erasure
replaces the key with a tombstone: every sealed copy on a topic, in a dead-letter topic or in a
backup of the topics is unreadable from then on, without rewriting any of them.

The sealed form on the wire (``Sealed``)::

    {"enc": "aesgcm1", "kid": "<key id>", "n": "<base64url 12-byte nonce>", "ct": "<base64url ciphertext+tag>"}

``aesgcm1`` names the scheme: AES-256-GCM, a random 96-bit nonce per seal, associated data
``engagiert/aesgcm1/<member id>/<municipality>/<field>`` (UTF-8). A later scheme gets a new name.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field

SCHEME = "aesgcm1"
KEY_BYTES = 32
NONCE_BYTES = 12


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealed(BaseModel):
    """A value sealed with its member's key (AES-256-GCM); opens only with that key, member and field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enc: Literal["aesgcm1"] = Field(description="the scheme: AES-256-GCM, 96-bit nonce, AAD member/municipality/field")
    kid: str = Field(min_length=1, max_length=64, description="the id of the member's key")
    n: str = Field(min_length=16, max_length=16, description="the nonce, base64url without padding")
    ct: str = Field(min_length=22, max_length=200_000, description="ciphertext and tag, base64url without padding")


class KeyShredded(Exception):
    """The member's key is gone (erased): the sealed value can never be opened again."""


class SealBroken(Exception):
    """A sealed value does not open with the key it names (tampered, or bound to another member or field)."""


@dataclass(frozen=True, slots=True)
class MemberKey:
    """One member's data key: its id and 32 random bytes."""

    kid: str
    secret: bytes

    @classmethod
    def new(cls) -> MemberKey:
        """Return a fresh random key."""
        return cls(kid=secrets.token_hex(8), secret=os.urandom(KEY_BYTES))

    def to_wire(self) -> dict[str, str]:
        """Return the key as the registry hands it out."""
        return {"kid": self.kid, "key": _b64(self.secret)}

    @classmethod
    def from_wire(cls, value: dict[str, str]) -> MemberKey:
        """Return the key the registry handed out; ValueError when it is not a 32-byte key."""
        secret = _unb64(value["key"])
        if len(secret) != KEY_BYTES:
            raise ValueError("a member key has 32 bytes")
        return cls(kid=str(value["kid"]), secret=secret)


def _aad(member_id: str, municipality: str, field: str) -> bytes:
    return f"engagiert/{SCHEME}/{member_id}/{municipality}/{field}".encode()


def seal(key: MemberKey, plaintext: bytes, *, member_id: str, municipality: str, field: str) -> Sealed:
    """Return ``plaintext`` sealed with the member's key, bound to member, municipality and field."""
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key.secret).encrypt(nonce, plaintext, _aad(member_id, municipality, field))
    return Sealed(enc=SCHEME, kid=key.kid, n=_b64(nonce), ct=_b64(ct))


def open_sealed(key: MemberKey | None, sealed: Sealed, *, member_id: str, municipality: str, field: str) -> bytes:
    """Return the plaintext; KeyShredded without a key, SealBroken when it does not open."""
    if key is None:
        raise KeyShredded(member_id)
    if not hmac.compare_digest(key.kid, sealed.kid):
        raise SealBroken(f"sealed with key {sealed.kid}, not the member's key {key.kid}")
    try:
        return AESGCM(key.secret).decrypt(_unb64(sealed.n), _unb64(sealed.ct), _aad(member_id, municipality, field))
    except (InvalidTag, ValueError) as exc:
        raise SealBroken(f"the sealed {field} does not open for member {member_id}") from exc


class KeysUnavailable(Exception):
    """The registry's key service did not answer: try again later (never a reason to dead-letter)."""


class MemberKeys:
    """Fetches members' keys from the registry and caches them in memory; an erasure drops the cached key.

    A member without a key (erased, so shredded; or never known to this registry) is cached as
    gone: erasure is final. ``fetch`` raises KeysUnavailable when the registry is away, which the
    consumers treat as transient (the batch waits and is retried, nothing is dead-lettered).
    """

    MAX_BATCH = 500

    def __init__(self, *, url: str, token: str, max_cached: int = 200_000, timeout_seconds: float = 10.0) -> None:
        self._url = url.rstrip("/") + "/internal/v1/member-keys"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._cache: OrderedDict[str, MemberKey | None] = OrderedDict()
        self._max = max_cached
        self._timeout = timeout_seconds
        self._http: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def fetch(self, member_ids: Iterable[str]) -> dict[str, MemberKey | None]:
        """Return each member's key, or None for a member whose key is gone."""
        wanted = list(dict.fromkeys(member_ids))
        missing = [m for m in wanted if m not in self._cache]
        for start in range(0, len(missing), self.MAX_BATCH):
            await self._load(missing[start : start + self.MAX_BATCH])
        found: dict[str, MemberKey | None] = {}
        for m in wanted:
            found[m] = self._cache.get(m)
            if m in self._cache:
                self._cache.move_to_end(m)
        return found

    async def _load(self, member_ids: list[str]) -> None:
        async with self._lock:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=self._timeout)
            http = self._http
        try:
            response = await http.post(self._url, json={"member_ids": member_ids}, headers=self._headers)
        except httpx.HTTPError as exc:
            raise KeysUnavailable(f"the registry's key service is not reachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise KeysUnavailable(f"the registry's key service answered {response.status_code}")
        body = response.json()
        keys = body.get("keys") or {}
        for m in member_ids:
            self._cache[m] = MemberKey.from_wire(keys[m]) if m in keys else None
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def forget(self, member_id: str) -> None:
        """Mark a member's key as gone (their erasure was applied): nothing of theirs opens here again."""
        self._cache[member_id] = None

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

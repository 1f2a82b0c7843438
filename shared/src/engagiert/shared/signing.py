"""Key rings for what the platform signs: volunteers' links (HMAC) and honour cards (Ed25519, a JWK Set).

Both rings are configured as ``kid:key`` entries separated by commas; the first entry signs, all
of them verify, so a key is rotated by putting a new one first and keeping the old ones until
what they signed has expired (links) or for as long as cards live (cards):

- :class:`LinkKeyRing` (``LINK_SECRETS``, each secret at least 32 bytes in production): tokens
  carry the key id as a third part, ``<payload>.<mac>.<kid>``; a token of two parts is from
  before the ring and is checked with ``LINK_SECRET``.
- :class:`CardKeyRing` (``CARD_SIGNING_KEYS``, each key a base64url 32-byte Ed25519 seed): a
  card code is a JWS in compact form, ``<header>.<claims>.<signature>`` with header
  ``{"alg":"EdDSA","kid":...}``. :meth:`CardKeyRing.jwks` is the public JWK Set (kty OKP, crv
  Ed25519) a partner verifies with, offline and with any Ed25519 library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

LEGACY_KID = ""
"""The key id of tokens signed before the ring (two parts): the plain ``LINK_SECRET``."""


class SignatureError(ValueError):
    """A token that is malformed, signed with an unknown key, or forged: ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64url(raw: bytes) -> str:
    """Return ``raw`` as unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Return the bytes of unpadded base64url ``text``; raise ValueError on anything else."""
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def parse_ring(text: str) -> list[tuple[str, str]]:
    """Return the ``(kid, key)`` entries of ``kid:key,kid:key``; raise ValueError on a malformed entry."""
    entries: list[tuple[str, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        kid, sep, key = part.strip().partition(":")
        if not sep or not kid or not key or any(c not in _B64URL for c in kid):
            raise ValueError("each key ring entry is kid:key, the kid in [A-Za-z0-9_-]")
        if kid in {k for k, _ in entries}:
            raise ValueError(f"the key id {kid} appears twice")
        entries.append((kid, key))
    return entries


@dataclass(frozen=True)
class LinkKeyRing:
    """HMAC-SHA256 keys for links: the first signs, every one verifies."""

    keys: tuple[tuple[str, bytes], ...]
    legacy: bytes | None = None

    @classmethod
    def from_settings(cls, ring: str, *, legacy_secret: str) -> LinkKeyRing:
        """Return the ring of ``LINK_SECRETS``; without one, ``LINK_SECRET`` signs under the legacy id."""
        entries = tuple((kid, key.encode()) for kid, key in parse_ring(ring))
        return cls(keys=entries, legacy=legacy_secret.encode())

    def _key(self, kid: str) -> bytes:
        if kid == LEGACY_KID and self.legacy is not None:
            return self.legacy
        for known, key in self.keys:
            if known == kid:
                return key
        raise SignatureError("forged")

    @staticmethod
    def _mac(key: bytes, purpose: str, payload: str) -> bytes:
        # The purpose is part of the MAC: an RSVP link cannot pass as another kind of token.
        return hmac.new(key, f"{purpose}|{payload}".encode(), hashlib.sha256).digest()[:18]

    def sign(self, payload: str, *, purpose: str) -> str:
        """Return ``<payload>.<mac>[.<kid>]`` under the signing key."""
        if not self.keys:
            assert self.legacy is not None
            return f"{b64url(payload.encode())}.{b64url(self._mac(self.legacy, purpose, payload))}"
        kid, key = self.keys[0]
        return f"{b64url(payload.encode())}.{b64url(self._mac(key, purpose, payload))}.{kid}"

    def verify(self, token: str, *, purpose: str) -> str:
        """Return the payload of a token any key of the ring signed; raise :class:`SignatureError` otherwise."""
        parts = token.split(".")
        if len(parts) not in (2, 3):
            raise SignatureError("malformed")
        try:
            payload = unb64url(parts[0]).decode()
            mac = unb64url(parts[1])
        except (ValueError, UnicodeDecodeError):
            raise SignatureError("malformed") from None
        key = self._key(parts[2] if len(parts) == 3 else LEGACY_KID)
        # compare_digest prevents timing attacks that would guess the MAC byte by byte
        if not hmac.compare_digest(mac, self._mac(key, purpose, payload)):
            raise SignatureError("forged")
        return payload


# -- expiring single-purpose links ------------------------------------------------------------

LinkPurpose = Literal["rsvp", "card", "unsubscribe"]
"""What a volunteer's link is for; part of its MAC, so one kind of link never passes as another."""
LinkFailure = Literal["malformed", "forged", "expired", "revoked"]

MAX_TOKEN_LENGTH = 2048
"""Longer links and codes are refused as malformed before any decoding."""


class LinkError(ValueError):
    """A signed link or code that is malformed, forged or altered, expired, or revoked; ``reason`` says which."""

    def __init__(self, reason: LinkFailure) -> None:
        super().__init__(reason)
        self.reason: LinkFailure = reason


def _ring(keys: LinkKeyRing | str) -> LinkKeyRing:
    # A plain secret is the ring of one legacy key (tests and callers from before the ring).
    return keys if isinstance(keys, LinkKeyRing) else LinkKeyRing.from_settings("", legacy_secret=keys)


def link_expiry(seconds: str) -> datetime:
    """Return the expiry a token states in epoch seconds; raise :class:`LinkError` for one no date holds."""
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise LinkError("malformed") from None  # a crafted expiry beyond what a date holds


def sign_link(keys: LinkKeyRing | str, *, purpose: LinkPurpose, subject: str, expires_at: datetime) -> str:
    """Return a URL-safe token binding ``subject`` to ``purpose`` until ``expires_at`` (under the ring's first key)."""
    return _ring(keys).sign(f"{subject}|{int(expires_at.timestamp())}", purpose=purpose)


def verify_link(keys: LinkKeyRing | str, token: str, *, purpose: LinkPurpose, now: datetime) -> tuple[str, datetime]:
    """Return (subject, expiry) of a token any key of the ring signed; raise :class:`LinkError` otherwise."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise LinkError("malformed")
    try:
        payload = _ring(keys).verify(token, purpose=purpose)
    except SignatureError as exc:
        raise LinkError("forged" if exc.reason == "forged" else "malformed") from None
    subject, sep, expires = payload.rpartition("|")
    if not sep:
        raise LinkError("malformed")
    expires_at = link_expiry(expires)
    if now >= expires_at:
        raise LinkError("expired")
    return subject, expires_at


@dataclass(frozen=True)
class CardKeyRing:
    """Ed25519 keys for card codes: the first signs, every one verifies and is published."""

    keys: tuple[tuple[str, Ed25519PrivateKey], ...]

    @classmethod
    def from_settings(cls, ring: str) -> CardKeyRing:
        """Return the ring of ``CARD_SIGNING_KEYS`` (``kid:<base64url 32-byte seed>``, first signs)."""
        keys: list[tuple[str, Ed25519PrivateKey]] = []
        for kid, seed in parse_ring(ring):
            raw = unb64url(seed)
            if len(raw) != 32:
                raise ValueError(f"the card signing key {kid} is not a 32-byte Ed25519 seed")
            keys.append((kid, Ed25519PrivateKey.from_private_bytes(raw)))
        if not keys:
            raise ValueError("CARD_SIGNING_KEYS holds no key")
        return cls(keys=tuple(keys))

    @staticmethod
    def generate_entry(kid: str) -> str:
        """Return a new ``kid:seed`` entry for ``CARD_SIGNING_KEYS``."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"{kid}:{b64url(seed)}"

    @property
    def signing_kid(self) -> str:
        """Return the id of the key that signs new codes."""
        return self.keys[0][0]

    def sign(self, claims: dict[str, Any]) -> str:
        """Return ``claims`` as a compact JWS (EdDSA) under the signing key."""
        kid, key = self.keys[0]
        header = b64url(json.dumps({"alg": "EdDSA", "kid": kid}, separators=(",", ":")).encode())
        body = b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{header}.{body}.{b64url(key.sign(f'{header}.{body}'.encode()))}"

    def verify(self, code: str) -> dict[str, Any]:
        """Return the claims of a code any key of the ring signed; raise :class:`SignatureError` otherwise."""
        parts = code.split(".")
        if len(parts) != 3 or len(code) > 2048:
            raise SignatureError("malformed")
        try:
            header = json.loads(unb64url(parts[0]))
            claims = json.loads(unb64url(parts[1]))
            signature = unb64url(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise SignatureError("malformed") from None
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "EdDSA":
            raise SignatureError("malformed")
        public = self.public_key(str(header.get("kid", "")))
        try:
            public.verify(signature, f"{parts[0]}.{parts[1]}".encode())
        except InvalidSignature:
            raise SignatureError("forged") from None
        return claims

    def public_key(self, kid: str) -> Ed25519PublicKey:
        """Return the public key of ``kid``; raise :class:`SignatureError` for an unknown id."""
        for known, key in self.keys:
            if known == kid:
                return key.public_key()
        raise SignatureError("forged")

    def jwks(self) -> dict[str, Any]:
        """Return the public JWK Set of every key in the ring (RFC 8037: kty OKP, crv Ed25519)."""
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": kid,
                    "use": "sig",
                    "alg": "EdDSA",
                    "x": b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
                }
                for kid, key in self.keys
            ]
        }

"""Key rings: card codes verify offline with the published JWK Set; rotation keeps old cards and links valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engagiert.shared.signing import CardKeyRing, LinkKeyRing, SignatureError

VERIFY = Path(__file__).resolve().parents[2] / "tools" / "verify_card.py"


def test_a_card_code_verifies_with_the_ten_line_script_and_only_cryptography(tmp_path: Path) -> None:
    """The published JWK Set (kty OKP, crv Ed25519, kid) verifies a code with tools/verify_card.py."""
    ring = CardKeyRing.from_settings(CardKeyRing.generate_entry("2026-11"))
    code = ring.sign({"hid": "h-1", "kind": "ehrenamtskarte", "until": "2029-12-31"})
    jwks = ring.jwks()
    assert {(k["kty"], k["crv"], k["kid"]) for k in jwks["keys"]} == {("OKP", "Ed25519", "2026-11")}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    assert len(VERIFY.read_text().splitlines()) <= 10
    out = subprocess.run([sys.executable, str(VERIFY), str(tmp_path / "jwks.json"), code], capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(out.stdout)["hid"] == "h-1"
    forged = code[:-4] + ("AAAA" if not code.endswith("AAAA") else "BBBB")
    refused = subprocess.run([sys.executable, str(VERIFY), str(tmp_path / "jwks.json"), forged], capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0


def test_after_a_card_key_rotation_old_cards_still_verify() -> None:
    """A new key first: new codes carry its kid, codes of the old key verify and its public key stays published."""
    old_entry = CardKeyRing.generate_entry("k1")
    old = CardKeyRing.from_settings(old_entry)
    old_code = old.sign({"hid": "h-old"})
    rotated = CardKeyRing.from_settings(f"{CardKeyRing.generate_entry('k2')},{old_entry}")
    assert rotated.verify(old_code) == {"hid": "h-old"}
    assert json.loads(__import__("base64").urlsafe_b64decode(rotated.sign({}).split(".")[0] + "==")) == {
        "alg": "EdDSA",
        "kid": "k2",
    }
    assert [k["kid"] for k in rotated.jwks()["keys"]] == ["k2", "k1"]
    with pytest.raises(SignatureError, match="forged"):
        CardKeyRing.from_settings(CardKeyRing.generate_entry("k1")).verify(old_code)


def test_after_a_link_secret_rotation_old_links_still_verify() -> None:
    """Links of the plain LINK_SECRET and of an older ring key verify after the ring gained a new first key."""
    legacy = "an-old-link-secret-of-32-bytes-or-more"
    before = LinkKeyRing.from_settings("", legacy_secret=legacy)
    plain = before.sign("inv-1|1900000000", purpose="rsvp")
    assert plain.count(".") == 1
    first = LinkKeyRing.from_settings("a:" + "1" * 32, legacy_secret=legacy)
    a_link = first.sign("inv-2|1900000000", purpose="rsvp")
    assert a_link.endswith(".a")
    rotated = LinkKeyRing.from_settings("b:" + "2" * 32 + ",a:" + "1" * 32, legacy_secret=legacy)
    assert rotated.verify(plain, purpose="rsvp") == "inv-1|1900000000"
    assert rotated.verify(a_link, purpose="rsvp") == "inv-2|1900000000"
    assert rotated.sign("x", purpose="rsvp").endswith(".b")
    with pytest.raises(SignatureError, match="forged"):
        rotated.verify(a_link, purpose="card")
    with pytest.raises(SignatureError, match="forged"):
        rotated.verify(a_link[:-1] + "z", purpose="rsvp")

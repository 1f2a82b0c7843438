"""Unit tests of crypto-shredding: sealing binds to member, municipality and field; a shredded key opens nothing."""

from __future__ import annotations

import json
from datetime import date

import pytest

from engagiert.registry import domain
from engagiert.registry.purge import identity_of
from engagiert.shared import shredding
from engagiert.shared.contracts import MemberRegistered, MemberSnapshot, SealedMemberSnapshot, seal_snapshot

SNAPSHOT = MemberSnapshot.model_validate(
    {
        "member_id": "m_1",
        "municipality": "05774032",
        "revision": 2,
        "given_name": "Erika",
        "family_name": "Mustermann",
        "date_of_birth": "1970-05-01",
        "contact": {
            "email": "erika@example.org",
            "phone": "05251 1",
            "postal_address": {"street": "Marienplatz 1", "postal_code": "33098", "city": "Paderborn"},
        },
        "external_refs": [{"system": "verein", "id": "e-1"}],
        "consent": {"channels": ["email"]},
    }
)


def test_a_sealed_snapshot_carries_no_personal_data_and_opens_to_the_same_snapshot() -> None:
    """The wire form has none of the personal values; with the key it opens to what was sealed."""
    key = shredding.MemberKey.new()
    wire = MemberRegistered(member=seal_snapshot(SNAPSHOT, key)).model_dump_json()
    for value in ("Erika", "Mustermann", "1970-05-01", "erika@example.org", "05251 1", "Marienplatz", "e-1"):
        assert value not in wire
    assert '"channels":["email"]' in wire  # consent stays readable
    parsed = MemberRegistered.model_validate_json(wire)
    assert isinstance(parsed.member, SealedMemberSnapshot)
    assert parsed.member.open(key) == SNAPSHOT


def test_a_sealed_value_opens_only_for_its_member_and_municipality_and_never_without_the_key() -> None:
    """Copied into another member's or municipality's record it does not open; a shredded key opens nothing."""
    key = shredding.MemberKey.new()
    sealed = seal_snapshot(SNAPSHOT, key).model_dump(mode="json")
    for change in ({"member_id": "m_2"}, {"municipality": "05711000"}):
        moved = SealedMemberSnapshot.model_validate({**sealed, **change})
        with pytest.raises(shredding.SealBroken):
            moved.open(key)
    with pytest.raises(shredding.SealBroken):
        SealedMemberSnapshot.model_validate(sealed).open(shredding.MemberKey.new())
    with pytest.raises(shredding.KeyShredded):
        SealedMemberSnapshot.model_validate(sealed).open(None)


def test_a_member_key_goes_over_the_wire_and_back() -> None:
    """The registry's answer gives back the same 32-byte key; anything else is refused."""
    key = shredding.MemberKey.new()
    assert shredding.MemberKey.from_wire(key.to_wire()) == key
    with pytest.raises(ValueError, match="32 bytes"):
        shredding.MemberKey.from_wire({"kid": "k", "key": "c2hvcnQ"})


def test_the_purge_finds_the_identity_of_structured_and_binary_commands() -> None:
    """E-mail, name with birth date, external reference and member id, from either CloudEvents mode."""
    data = {
        "municipality": "05774032",
        "external_ref": {"system": "verein", "id": "e-1"},
        "given_name": "Erika",
        "family_name": "Mustermann",
        "date_of_birth": "1970-05-01",
        "email": "Erika@Example.org",
    }
    structured = json.dumps({"specversion": "1.0", "type": "x", "data": data}).encode()
    ags, member_id, keys = identity_of(structured, [])
    assert ags == "05774032"
    assert member_id is None
    assert keys == [
        f"e:{domain.email_key('Erika@Example.org')}",
        f"n:{domain.name_dob_key('Erika', 'Mustermann', date(1970, 5, 1))}",
        "x:verein:e-1",
    ]
    binary = json.dumps({"member_id": "m_1", "hours": 3}).encode()
    assert identity_of(binary, [("ce_municipality", b"05774032")]) == ("05774032", "m_1", [])
    assert identity_of(b"\xff not json", []) == (None, None, [])

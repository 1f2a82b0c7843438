"""Contracts of ``registry.members.v1``: facts about members, keyed by member id.

``registered`` and ``updated`` carry the whole member (event-carried state transfer), so a
consumer builds its read model by upserting and never asks the registry. ``revision`` grows
with every change of the member: a consumer ignores a snapshot older than the one it holds.
Contact data travels here because notifications needs it; events must drop it.

The registry writes the personal part of a snapshot (names, birth date, contact, external
references) sealed with the member's own key (:class:`SealedMemberSnapshot`, see
:mod:`engagiert.shared.shredding`): erasure shreds the key, and every copy of the snapshot on the
topic becomes unreadable. The plaintext form (:class:`MemberSnapshot`) is still accepted from
records written before sealing began; the registry no longer writes it.
The municipality's profile (``municipality.profile-changed``, keyed by its AGS) travels here too:
notifications, which consumes this topic, signs its letters with it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field

from engagiert.shared import shredding, topics
from engagiert.shared.contracts.base import (
    Ags,
    Channel,
    EntityId,
    EventData,
    Field_,
    Language,
    MemberStatus,
)


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class PostalAddress(_Part):
    """A German postal address."""

    street: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(pattern=r"^[0-9]{5}$")
    city: str = Field(min_length=1, max_length=100)


class Contact(_Part):
    """How a member can be reached; personal data."""

    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    postal_address: PostalAddress | None = None


class Consent(_Part):
    """Whether and how a member may be written to."""

    channels: list[Channel] = Field(default_factory=list)
    given_at: datetime | None = None
    source: str | None = Field(default=None, max_length=200, description="e.g. 'Formular Anlaufstelle'")
    withdrawn_at: datetime | None = None


class Engagement(_Part):
    """One engagement of a member in an organisation."""

    engagement_id: EntityId
    organisation_id: EntityId | None = None
    organisation_name: str | None = None
    field: Field_
    role: str | None = Field(default=None, max_length=200)
    since: date
    until: date | None = None


class Juleica(_Part):
    """The Jugendleiter/in-Card (Juleica) of a member."""

    holder: bool = False
    expires_on: date | None = None


class ExternalRef(_Part):
    """An identifier of the member in another municipal system."""

    system: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    id: str = Field(min_length=1, max_length=200)


class HoursTotals(_Part):
    """Derived figures at the time of the event."""

    hours_last_12_months: float = 0.0
    hours_by_year: dict[str, float] = Field(default_factory=dict, description="calendar year -> hours")
    years_of_engagement: float = 0.0


class MemberSnapshot(_Part):
    """The whole member as the registry holds it."""

    member_id: EntityId
    municipality: Ags
    revision: int = Field(ge=1)
    given_name: str
    family_name: str
    date_of_birth: date | None = None
    language: Language = "de"
    status: MemberStatus = "active"
    contact: Contact = Field(default_factory=Contact)
    consent: Consent = Field(default_factory=Consent)
    engagements: list[Engagement] = Field(default_factory=list)
    juleica: Juleica = Field(default_factory=Juleica)
    external_refs: list[ExternalRef] = Field(default_factory=list)
    totals: HoursTotals = Field(default_factory=HoursTotals)


PERSONAL_FIELD = "personal"
"""The field name a snapshot's sealed personal part is bound to (associated data)."""


class MemberPersonal(_Part):
    """The personal part of a member snapshot: what is sealed with the member's key."""

    given_name: str
    family_name: str
    date_of_birth: date | None = None
    contact: Contact = Field(default_factory=Contact)
    external_refs: list[ExternalRef] = Field(default_factory=list)


class SealedMemberSnapshot(_Part):
    """A member snapshot whose personal part is sealed with the member's key (crypto-shredding)."""

    member_id: EntityId
    municipality: Ags
    revision: int = Field(ge=1)
    language: Language = "de"
    status: MemberStatus = "active"
    consent: Consent = Field(default_factory=Consent)
    engagements: list[Engagement] = Field(default_factory=list)
    juleica: Juleica = Field(default_factory=Juleica)
    totals: HoursTotals = Field(default_factory=HoursTotals)
    personal: shredding.Sealed = Field(
        description="MemberPersonal as JSON, sealed with the member's key (AES-256-GCM, AAD member/municipality/"
        "'personal'); unreadable once the member is erased"
    )

    def open(self, key: shredding.MemberKey | None) -> MemberSnapshot:
        """Return the whole snapshot; KeyShredded when the key is gone, SealBroken when it does not open."""
        raw = shredding.open_sealed(
            key, self.personal, member_id=self.member_id, municipality=self.municipality, field=PERSONAL_FIELD
        )
        personal = MemberPersonal.model_validate_json(raw)
        # Both parts are validated models already: put them together without validating again.
        fields = {name: getattr(self, name) for name in _CLEAR_FIELDS}
        fields.update({name: getattr(personal, name) for name in _PERSONAL_FIELDS})
        return MemberSnapshot.model_construct(**fields)


_PERSONAL_FIELDS = frozenset(MemberPersonal.model_fields)
_CLEAR_FIELDS = frozenset(SealedMemberSnapshot.model_fields) - {"personal"}


def seal_snapshot(snapshot: MemberSnapshot, key: shredding.MemberKey) -> SealedMemberSnapshot:
    """Return ``snapshot`` with its personal part sealed with the member's key."""
    sealed = shredding.seal(
        key,
        snapshot.model_dump_json(include=set(_PERSONAL_FIELDS)).encode(),
        member_id=snapshot.member_id,
        municipality=snapshot.municipality,
        field=PERSONAL_FIELD,
    )
    # The snapshot is validated already: its clear fields move over as they are.
    return SealedMemberSnapshot.model_construct(
        **{name: getattr(snapshot, name) for name in _CLEAR_FIELDS}, personal=sealed
    )


AnySnapshot = SealedMemberSnapshot | MemberSnapshot
"""What a member fact carries: sealed (what the registry writes) or plaintext (older records)."""


def open_snapshot(member: AnySnapshot, key: shredding.MemberKey | None) -> MemberSnapshot:
    """Return the plaintext snapshot; KeyShredded when a sealed one's key is gone."""
    return member if isinstance(member, MemberSnapshot) else member.open(key)


class MemberRegistered(EventData):
    """A member was registered."""

    TYPE: ClassVar[str] = "de.engagiert.member.registered.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_MEMBERS

    member: AnySnapshot

    def partition_key(self) -> str:
        """Return the member id."""
        return self.member.member_id


class MemberUpdated(EventData):
    """A member's data changed (any field); carries the whole member."""

    TYPE: ClassVar[str] = "de.engagiert.member.updated.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_MEMBERS

    member: AnySnapshot
    changed: list[str] = Field(default_factory=list, description="top-level fields that changed")

    def partition_key(self) -> str:
        """Return the member id."""
        return self.member.member_id


class MemberStatusChanged(EventData):
    """A member's status changed (active, paused, left)."""

    TYPE: ClassVar[str] = "de.engagiert.member.status-changed.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_MEMBERS

    member_id: EntityId
    municipality: Ags
    revision: int = Field(ge=1)
    status: MemberStatus
    previous_status: MemberStatus


class MemberConsentChanged(EventData):
    """A member gave, changed or withdrew consent."""

    TYPE: ClassVar[str] = "de.engagiert.member.consent-changed.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_MEMBERS

    member_id: EntityId
    municipality: Ags
    revision: int = Field(ge=1)
    consent: Consent


class MemberErased(EventData):
    """A member was erased (DSGVO Art. 17): every service removes their personal data and confirms."""

    TYPE: ClassVar[str] = "de.engagiert.member.erased.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_MEMBERS

    member_id: EntityId
    municipality: Ags
    erased_at: datetime


MunicipalityKind = Literal["Stadt", "Gemeinde", "Kreis", "Bezirksregierung"]


class MunicipalityProfile(_Part):
    """What a municipality's letters say about it: name, kind, contact point and where to find it."""

    ags: Ags
    revision: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=200, description="e.g. 'Stadt Paderborn'")
    kind: MunicipalityKind
    contact_point_name: str | None = Field(
        default=None, max_length=200, description="e.g. 'Anlaufstelle für ehrenamtliches Engagement'"
    )
    contact_point_email: EmailStr | None = None
    contact_point_phone: str | None = Field(default=None, max_length=40)
    postal_address: PostalAddress | None = None
    website: AnyHttpUrl | None = None
    logo_url: AnyHttpUrl | None = None
    inhabitants: int | None = Field(
        default=None, ge=0, le=100_000_000, description="inhabitants: the size class in the network's figures"
    )
    named_in_network: bool = Field(
        default=True,
        description="whether the network's figures name the municipality (false: shown by kind and size class only)",
    )


class MunicipalityProfileChanged(EventData):
    """A municipality was created or its profile changed; carries the whole profile (the newest revision wins)."""

    TYPE: ClassVar[str] = "de.engagiert.municipality.profile-changed.v1"
    TOPIC: ClassVar[str] = topics.REGISTRY_MEMBERS

    municipality: Ags
    profile: MunicipalityProfile

    def partition_key(self) -> str:
        """Return the municipality's key."""
        return self.municipality

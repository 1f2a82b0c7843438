"""Models and rules of notifications: contacts, deliveries, branding, suppression; no I/O."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl

from engagiert.shared.contracts.base import Language
from engagiert.shared.contracts.members import MemberSnapshot
from engagiert.shared.contracts.notifications import TemplateName

DeliveryStatus = Literal["queued", "sending", "sent", "failed", "suppressed", "cancelled", "letter"]
SuppressionReason = Literal["no-consent", "member-left", "member-erased", "no-address", "unknown-member"]

TEMPLATE_NAMES: tuple[str, ...] = TemplateName.__args__  # type: ignore[attr-defined]
LANGUAGES: tuple[str, ...] = ("de", "en")
DEFAULT_LANGUAGE = "de"


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC (the one clock every use case reads)."""
    return datetime.now(UTC)


def delivery_id_for(request_event_id: str) -> str:
    """Return the delivery id derived from a request's CloudEvent id (the idempotency key)."""
    return "d_" + hashlib.sha256(request_event_id.encode("utf-8")).hexdigest()[:32]


def message_id_for(delivery_id: str, domain: str) -> str:
    """Return the RFC 5322 Message-ID of a delivery: a resend after a crash carries the same one."""
    return f"<{delivery_id}@{domain}>"


def contact_from_snapshot(member: MemberSnapshot) -> dict[str, Any]:
    """Return the contact document (read model) for a member snapshot."""
    return {
        "_id": member.member_id,
        "municipality": member.municipality,
        "revision": member.revision,
        "given_name": member.given_name,
        "family_name": member.family_name,
        "language": member.language,
        "status": member.status,
        "email": str(member.contact.email) if member.contact.email else None,
        "postal_address": member.contact.postal_address.model_dump() if member.contact.postal_address else None,
        "consent_channels": [] if member.consent.withdrawn_at else list(member.consent.channels),
        "erased": False,
    }


def suppression_reason(contact: dict[str, Any] | None, *, municipality: str, channel: str) -> SuppressionReason | None:
    """Return why a message to ``contact`` must not be sent, or None when it may be sent."""
    if contact is None or contact.get("municipality") != municipality:
        # A member of another municipality is as unknown as no member: no tenant writes to another's.
        return "unknown-member"
    if contact.get("erased"):
        return "member-erased"
    if contact.get("status") == "left":
        return "member-left"
    if channel not in (contact.get("consent_channels") or []):
        return "no-consent"
    if channel == "email" and not contact.get("email"):
        return "no-address"
    return None


def goes_by_post(contact: dict[str, Any] | None, reason: SuppressionReason | None) -> bool:
    """Return True when a message that cannot go by e-mail goes as a printed letter (consent to post, an address)."""
    if contact is None or reason not in ("no-consent", "no-address"):
        return False
    return "post" in (contact.get("consent_channels") or []) and bool(contact.get("postal_address"))


def recipient_lines(contact: dict[str, Any]) -> list[str]:
    """Return the address lines of a printed letter: name, street, postal code and city."""
    address = contact.get("postal_address") or {}
    name = f"{contact.get('given_name', '')} {contact.get('family_name', '')}".strip()
    return [name, address.get("street", ""), f"{address.get('postal_code', '')} {address.get('city', '')}".strip()]


def retry_delay(attempts: int, *, base: float, maximum: float) -> timedelta:
    """Return the wait before the next attempt after ``attempts`` failed ones (exponential backoff)."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), maximum))


def holds_for_unknown_member(created_at: datetime, now: datetime, grace_seconds: float) -> bool:
    """Return True while a request for a not-yet-known member should wait for the member's snapshot."""
    return now - created_at < timedelta(seconds=grace_seconds)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


DEFAULT_COLOUR = "#005a9c"
"""A dark blue with 7:1 contrast to white: the buttons' colour until a municipality sets its own."""


class BrandingUpdate(_Model):
    """Staff's branding of a municipality's messages: what is set here wins over the registry's profile."""

    name: str | None = Field(default=None, min_length=1, max_length=200, description="e.g. 'Stadt Paderborn'")
    signature: str = Field(
        default="", max_length=2000, description="signature of the contact point, several lines allowed"
    )
    logo_url: HttpUrl | None = None
    colour: str | None = Field(
        default=None, pattern=r"^#[0-9a-fA-F]{6}$", description="buttons and rules; dark enough for white text"
    )
    contact_name: str | None = Field(default=None, max_length=200, description="the contact point's name")
    email: EmailStr | None = Field(default=None, description="Reply-To of the messages")
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500, description="postal address, one line per row")
    website: HttpUrl | None = None


class BrandingPublic(BaseModel):
    """A municipality's branding as its messages show it (the registry's profile, staff's settings on top)."""

    municipality: str
    name: str
    signature: str = ""
    logo_url: str | None = None
    colour: str = DEFAULT_COLOUR
    contact_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    website: str | None = None


def default_branding(ags: str) -> dict[str, Any]:
    """Return the branding used until the registry's profile arrives or staff set one."""
    return {"municipality": ags, "name": f"Kommune {ags}", "signature": "", "logo_url": None}


def branding_from_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """Return the branding a municipality's profile (``municipality.profile-changed``) gives its messages."""
    address = profile.get("postal_address") or {}
    lines = [address.get("street"), " ".join(p for p in (address.get("postal_code"), address.get("city")) if p)]
    return {
        "municipality": profile["ags"],
        "name": profile["name"],
        "contact_name": profile.get("contact_point_name"),
        "email": profile.get("contact_point_email"),
        "phone": profile.get("contact_point_phone"),
        "address": "\n".join(line for line in lines if line) or None,
        "website": profile.get("website"),
        "logo_url": profile.get("logo_url"),
    }


def merge_branding(ags: str, profile: dict[str, Any] | None, stored: dict[str, Any] | None) -> dict[str, Any]:
    """Return the branding of a municipality: the default, the registry's profile over it, staff's settings on top."""
    branding: dict[str, Any] = {**default_branding(ags), "colour": DEFAULT_COLOUR}
    if profile:
        branding.update({k: v for k, v in branding_from_profile(profile).items() if v is not None})
    for key, value in (stored or {}).items():
        if key in BrandingUpdate.model_fields and value not in (None, ""):
            branding[key] = value
    return branding


def sender_name(branding: dict[str, Any]) -> str:
    """Return the From display name: "Stadt Paderborn – Anlaufstelle für ehrenamtliches Engagement"."""
    contact = branding.get("contact_name")
    return f"{branding['name']} – {contact}" if contact else str(branding["name"])


class PreviewRequest(_Model):
    """What to render a template with for a preview."""

    language: Language = "de"
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    given_name: str = Field(default="Erika", max_length=100)
    family_name: str = Field(default="Mustermann", max_length=100)


class CertificateRequest(_Model):
    """What a certificate says (the defaults are the example a preview shows)."""

    holder: str = Field(default="Erika Mustermann", min_length=1, max_length=200)
    dated: date | None = Field(default=None, description="the certificate's date; today when not given")
    title: str = Field(default="die Ehrenamtskarte NRW", max_length=200, description="Urkunde: what is awarded")
    organisation: str = Field(default="Paderborner Tafel e. V.", max_length=200)
    field_of_engagement: str = Field(default="Soziales", max_length=100)
    activity: str = Field(default="Ausgabe von Lebensmitteln an Bedürftige", max_length=500)
    period: str = Field(default="März 2019 bis November 2026", max_length=100)
    hours: float | None = Field(default=1234.5, ge=0, le=100_000)
    competences: list[str] = Field(default_factory=lambda: ["Organisation und Planung", "Teamarbeit"], max_length=10)
    thanks: str = Field(default="", max_length=1000)


class RenderedMessage(BaseModel):
    """A rendered message: subject, plain text and HTML; the attachments are sent, not stored or shown."""

    subject: str
    text: str
    html: str
    calendar: bytes | None = Field(default=None, exclude=True)
    calendar_method: Literal["REQUEST", "CANCEL"] | None = Field(default=None, exclude=True)
    images: dict[str, bytes] = Field(default_factory=dict, exclude=True, description="content id -> PNG")


class DeliveryPublic(BaseModel):
    """A delivery as the log shows it (no address, no content)."""

    delivery_id: str
    request_id: str
    municipality: str
    member_id: str
    template: str
    channel: str
    status: DeliveryStatus
    reason: str | None = None
    attempts: int
    answer: str | None = None
    not_before: datetime | None = None
    cancel_key: str | None = None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    resend_of: str | None = None
    content_erased: bool = False

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> DeliveryPublic:
        """Build the public view of a delivery document."""
        return cls(
            delivery_id=doc["_id"],
            request_id=doc["request_id"],
            municipality=doc["municipality"],
            member_id=doc["member_id"],
            template=doc["template"],
            channel=doc.get("channel", "email"),
            status=doc["status"],
            reason=doc.get("reason"),
            attempts=doc.get("attempts", 0),
            answer=doc.get("answer"),
            not_before=doc.get("not_before"),
            cancel_key=doc.get("cancel_key"),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            sent_at=doc.get("sent_at"),
            resend_of=doc.get("resend_of"),
            content_erased=bool(doc.get("content_erased")),
        )

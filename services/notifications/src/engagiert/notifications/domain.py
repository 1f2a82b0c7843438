"""Models and rules of notifications: contacts, deliveries, branding, suppression; no I/O."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from engagiert.shared.contracts.base import Language
from engagiert.shared.contracts.members import MemberSnapshot
from engagiert.shared.contracts.notifications import TemplateName

DeliveryStatus = Literal["queued", "sending", "sent", "failed", "suppressed", "cancelled"]
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


def retry_delay(attempts: int, *, base: float, maximum: float) -> timedelta:
    """Return the wait before the next attempt after ``attempts`` failed ones (exponential backoff)."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), maximum))


def holds_for_unknown_member(created_at: datetime, now: datetime, grace_seconds: float) -> bool:
    """Return True while a request for a not-yet-known member should wait for the member's snapshot."""
    return now - created_at < timedelta(seconds=grace_seconds)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BrandingUpdate(_Model):
    """A municipality's branding of its messages."""

    name: str = Field(min_length=1, max_length=200, description="e.g. 'Stadt Paderborn'")
    signature: str = Field(
        default="", max_length=2000, description="signature of the contact point, several lines allowed"
    )
    logo_url: HttpUrl | None = None


class BrandingPublic(BrandingUpdate):
    """A municipality's branding as stored."""

    municipality: str


def default_branding(ags: str) -> dict[str, Any]:
    """Return the branding used until a municipality sets its own."""
    return {"municipality": ags, "name": f"Kommune {ags}", "signature": "", "logo_url": None}


class PreviewRequest(_Model):
    """What to render a template with for a preview."""

    language: Language = "de"
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    given_name: str = Field(default="Erika", max_length=100)
    family_name: str = Field(default="Mustermann", max_length=100)


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

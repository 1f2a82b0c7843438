"""Owns the connected systems: their grants, and the check of every inbound command against them.

A connected system writes commands to a topic of its own (``registry.inbound.<name>.v1``; the
broker's ACLs let only its Kafka user write there). The topic thus names the sender; the grant
kept here says for which municipalities it may act and which kinds of command it may send. A
command outside the grant, or from a revoked system, has no effect: the consumer dead-letters it
as ``not-authorised``. Commands on the operators' channel (``registry.inbound.v1``, writable
only by the Kafka super user) are not checked here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from engagiert.registry.repository import Doc
from engagiert.registry.services.common import UseCases
from engagiert.shared import topics
from engagiert.shared.contracts import RegisterMember, ReportHours
from engagiert.shared.envelope import Envelope

Permission = Literal["register-members", "report-hours"]
PERMISSIONS: tuple[str, ...] = get_args(Permission)
PERMISSION_OF_TYPE: dict[str, Permission] = {
    RegisterMember.TYPE: "register-members",
    ReportHours.TYPE: "report-hours",
}
"""Which permission each command type needs; a type not listed is never admitted from a system."""


def refusal(grant: Doc | None, *, system: str, event_type: str, municipality: str | None) -> str | None:
    """Return why ``system`` may not send this command under ``grant`` (None when it may)."""
    if grant is None:
        return f"system {system} is not connected"
    if grant.get("status") != "connected":
        return f"system {system} was revoked"
    needed = PERMISSION_OF_TYPE.get(event_type)
    if needed is None:
        return f"system {system} may not send {event_type}"
    if needed not in (grant.get("permissions") or []):
        return f"system {system} lacks the permission {needed}"
    if municipality not in (grant.get("municipalities") or []):
        return f"system {system} may not act for municipality {municipality}"
    return None


@dataclass(kw_only=True)
class Systems(UseCases):
    """Records grants and checks inbound commands against them."""

    async def admit(self, items: Sequence[tuple[str, Envelope[Any]]]) -> Mapping[str, str]:
        """Return ``{event id: reason}`` for the commands whose system may not send them."""
        senders = {t: topics.system_of_topic(t) for t, _ in items}
        names = sorted({s for s in senders.values() if s})
        if not names:
            return {}
        grants = {d["_id"]: d for d in await self.repo.systems_by_names(names)}
        refused: dict[str, str] = {}
        for topic, env in items:
            system = senders[topic]
            if system is None:
                continue  # the operators' channel
            why = refusal(
                grants.get(system),
                system=system,
                event_type=env.type,
                municipality=getattr(env.data, "municipality", None),
            )
            if why is not None:
                refused[env.id] = why
        return refused

    async def record_grant(
        self, *, name: str, user: str, topic: str, municipalities: Sequence[str], permissions: Sequence[str]
    ) -> Doc:
        """Record that ``name`` is connected with this grant (replacing an earlier one)."""
        unknown = sorted(set(municipalities) - await self.repo.existing_municipalities(list(municipalities)))
        if unknown:
            raise ValueError(f"unknown municipalities: {', '.join(unknown)} (create them first)")
        bad = sorted(set(permissions) - set(PERMISSIONS))
        if bad:
            raise ValueError(f"unknown permissions: {', '.join(bad)} (known: {', '.join(PERMISSIONS)})")
        doc: Doc = {
            "_id": name,
            "user": user,
            "topic": topic,
            "municipalities": sorted(set(municipalities)),
            "permissions": sorted(set(permissions)),
            "status": "connected",
            "connected_at": self.clock(),
            "revoked_at": None,
        }
        await self.repo.save_system(doc)
        return doc

    async def revoke(self, name: str) -> Doc | None:
        """Mark ``name`` revoked: every later command from it is refused; None when unknown."""
        return await self.repo.revoke_system(name, at=self.clock())

    async def list(self) -> list[Doc]:
        """Return every connected system (revoked ones too)."""
        return await self.repo.list_systems()


def public_view(doc: Doc) -> dict[str, Any]:
    """Return a grant as an operator reads it (never a secret: the registry keeps none)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "name": doc["_id"],
        "user": doc.get("user"),
        "topic": doc.get("topic"),
        "municipalities": doc.get("municipalities") or [],
        "permissions": doc.get("permissions") or [],
        "status": doc.get("status"),
        "connected_at": iso(doc.get("connected_at")),
        "revoked_at": iso(doc.get("revoked_at")),
    }

"""Contacts: the read model of members' contacts and consent, and of the municipalities' profiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engagiert.notifications import domain
from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.domain import utcnow
from engagiert.notifications.repository import Doc, Repository
from engagiert.shared.contracts import (
    ConfirmErasure,
    MemberConsentChanged,
    MemberErased,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
    MunicipalityProfileChanged,
)
from engagiert.shared.envelope import Envelope, make_record
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.sealed import open_snapshots
from engagiert.shared.shredding import MemberKeys

log = get_logger(__name__)


@dataclass(kw_only=True)
class Contacts:
    """Keeps the contacts read model from member facts and erases a member's data (DSGVO Art. 17)."""

    repo: Repository
    settings: NotificationsSettings
    on_outbox: Any = None
    """Called after a write that added outbox entries (``runtime.relay.notify``)."""
    keys: MemberKeys | None = None
    """Fetches members' keys from the registry (snapshots are sealed); from the settings when not given."""

    async def apply_member_events(self, events: Sequence[Envelope[Any]]) -> None:
        """Apply member facts to the contacts read model, in order, each once (revisions guard)."""
        if self.keys is None:
            self.keys = self.settings.member_keys()
        opened = await open_snapshots(events, self.keys)
        for env in events:
            data = env.data
            if isinstance(data, MemberRegistered | MemberUpdated):
                snap = opened[env.id]
                if snap is None:
                    continue  # the member's key is shredded: they were erased
                doc = domain.contact_from_snapshot(snap)
                if not await self.repo.insert_contact(doc):
                    fields = {k: v for k, v in doc.items() if k not in ("_id", "revision")}
                    await self.repo.update_contact_if_newer(snap.member_id, snap.revision, fields)
            elif isinstance(data, MemberStatusChanged):
                await self.repo.update_contact_if_newer(data.member_id, data.revision, {"status": data.status})
            elif isinstance(data, MemberConsentChanged):
                channels = [] if data.consent.withdrawn_at else list(data.consent.channels)
                await self.repo.update_contact_if_newer(data.member_id, data.revision, {"consent_channels": channels})
            elif isinstance(data, MemberErased):
                await self.erase(data, event_id=env.id)
                self.keys.forget(data.member_id)
            elif isinstance(data, MunicipalityProfileChanged):
                # The municipality's profile signs its letters (staff's branding settings win over it).
                await self.repo.put_profile_if_newer(data.profile.model_dump(mode="json"))

    async def erase(self, data: MemberErased, *, event_id: str) -> None:
        """Delete a member's contact and the content of their messages, then confirm (DSGVO Art. 17)."""
        now = utcnow()
        # The mark first: from here on the sender starts no message to the member (it checks per chunk)
        # and drops the content of a message that was in flight. Content next: when we crash in
        # between, the replayed event finds content left to erase.
        await self.repo.mark_erasing(data.member_id, now)
        erased = await self.repo.erase_content(data.member_id, now)
        confirm = make_record(
            ConfirmErasure(
                member_id=data.member_id, municipality=data.municipality, service="notifications", erased_at=now
            ),
            source=self.settings.source,
            event_id=f"notifications-erasure-{event_id}"[:200],
        )
        tombstone: Doc = {
            "_id": data.member_id,
            "municipality": data.municipality,
            "erased": True,
            "erased_at": data.erased_at,
            "revision": 2**62,  # no later snapshot (a replay) may bring the data back
        }
        # Sweep once more right before confirming: a chunk in flight may have written content meanwhile.
        await self.repo.erase_content(data.member_id, utcnow())
        await self.repo.erase_contact(data.member_id, tombstone, [confirm])
        log.info("member_erased", member_id=data.member_id, municipality=data.municipality, deliveries=erased)
        self._notify_outbox()

    def _notify_outbox(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

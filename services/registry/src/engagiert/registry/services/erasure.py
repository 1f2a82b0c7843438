"""Owns erasure (DSGVO Art. 17): the tombstone, the MemberErased fact and the services' confirmations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import NotFound, UseCases
from engagiert.shared.contracts import ConfirmErasure, MemberErased
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.consumer import PermanentError

log = get_logger(__name__)


@dataclass(kw_only=True)
class Erasure(UseCases):
    """Runs the use cases of erasure."""

    async def erase(self, ags: str, member_id: str) -> Doc:
        """Erase a member (DSGVO Art. 17): a tombstone stays, hours go, MemberErased is published."""
        now = self.clock()
        record = self._record(MemberErased(member_id=member_id, municipality=ags, erased_at=now))
        # One guarded update (atomic on the store): it misses only a member that is gone or erased already.
        if not await self._erase_once(ags, member_id, record, now):
            raise NotFound(member_id)
        await self.repo.delete_hours_of(member_id)
        self.notify()
        log.info("member_erased", municipality=ags, member_id=member_id)
        return await self.erasure_status(ags, member_id)

    async def _erase_once(self, ags: str, member_id: str, record: OutgoingRecord, now: datetime) -> bool:
        return await self.repo.erase_member(
            ags,
            member_id,
            set_fields={
                "erased": True,
                "status": "erased",
                "erasure": {"erased_at": now, "confirmations": {}},
                "updated_at": now,
            },
            unset=[*domain.PERSONAL_FIELDS, "org_ids", "fields", "_applied", "revision"],
            record=record,
        )

    async def erasure_status(self, ags: str, member_id: str) -> Doc:
        """Return which services confirmed a member's erasure."""
        doc = await self.repo.get_member(ags, member_id)
        if doc is None or not doc.get("erased"):
            raise NotFound(member_id)
        erasure = doc.get("erasure") or {}
        confirmations = erasure.get("confirmations") or {}
        expected = ("events", "notifications")
        return {
            "member_id": member_id,
            "municipality": ags,
            "erased_at": erasure.get("erased_at"),
            "confirmations": {s: confirmations.get(s) for s in expected},
            "complete": all(confirmations.get(s) for s in expected),
        }

    async def confirm_erasure(self, cmd: ConfirmErasure) -> None:
        """Record a service's confirmation of an erasure; PermanentError when no such erased member exists."""
        if not await self.repo.record_confirmation(cmd.municipality, cmd.member_id, cmd.service, cmd.erased_at):
            raise PermanentError(f"no erased member {cmd.member_id} in municipality {cmd.municipality}")

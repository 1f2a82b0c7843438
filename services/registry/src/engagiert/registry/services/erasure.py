"""Owns erasure (DSGVO Art. 17): the tombstone, the MemberErased fact and the services' confirmations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import InvalidChange, NotFound, UseCases
from engagiert.shared.contracts import ConfirmErasure, MemberErased
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.consumer import PermanentError

log = get_logger(__name__)


@dataclass(kw_only=True)
class Erasure(UseCases):
    """Runs the use cases of erasure."""

    async def erase(self, ags: str, member_id: str, *, attempts: int = 5) -> Doc:
        """Erase a member (DSGVO Art. 17): a tombstone keeps salted identity hashes, hours go, MemberErased goes out."""
        now = self.clock()
        record = self._record(MemberErased(member_id=member_id, municipality=ags, erased_at=now))
        for _ in range(attempts):
            doc = await self.repo.get_member(ags, member_id)
            if doc is None or doc.get("erased"):
                raise NotFound(member_id)
            # One update guarded by the revision the hashes were taken from (atomic on the store).
            if await self._erase_once(doc, record, now):
                break
        else:
            raise InvalidChange("the member changed too often meanwhile; try again")
        await self.repo.shred_member_key(member_id, now=now)  # every sealed copy on the topics is unreadable now
        await self.repo.delete_hours_of(member_id)
        self.notify()
        log.info("member_erased", municipality=ags, member_id=member_id)
        return await self.erasure_status(ags, member_id)

    async def _erase_once(self, doc: Doc, record: OutgoingRecord, now: datetime) -> bool:
        ags = doc["municipality"]
        keys = domain.identity_keys(
            email=doc.get("email_key"), name_dob=doc.get("name_dob_key"), ext_keys=doc.get("ext_keys") or []
        )
        return await self.repo.erase_member(
            ags,
            doc["_id"],
            revision=doc["revision"],
            set_fields={
                "erased": True,
                "status": "erased",
                "erasure": {"erased_at": now, "confirmations": {}},
                "erased_marks": self.erased_marks(ags, keys),
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
        keys = await self.repo.member_keys_of([member_id])
        if keys.get(member_id) is not None or member_id not in keys:
            await self.repo.shred_member_key(member_id, now=self.clock())  # a crash came between erasure and shred
        purged = erasure.get("inbound_purged_at")
        return {
            "member_id": member_id,
            "municipality": ags,
            "erased_at": erasure.get("erased_at"),
            "confirmations": {s: confirmations.get(s) for s in expected},
            "key_shredded": True,
            "inbound_purged_at": purged,
            "complete": all(confirmations.get(s) for s in expected) and purged is not None,
        }

    async def confirm_erasure(self, cmd: ConfirmErasure) -> None:
        """Record a service's confirmation of an erasure; PermanentError when no such erased member exists."""
        if not await self.repo.record_confirmation(cmd.municipality, cmd.member_id, cmd.service, cmd.erased_at):
            raise PermanentError(f"no erased member {cmd.member_id} in municipality {cmd.municipality}")

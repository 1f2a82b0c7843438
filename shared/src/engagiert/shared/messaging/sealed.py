"""Opens the sealed member snapshots of a consumed batch with the members' keys (crypto-shredding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagiert.shared import shredding
from engagiert.shared.contracts import MemberRegistered, MemberSnapshot, MemberUpdated, open_snapshot
from engagiert.shared.envelope import Envelope
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.consumer import PermanentError, TransientError

log = get_logger(__name__)


async def open_snapshots(
    events: Sequence[Envelope[Any]], keys: shredding.MemberKeys
) -> dict[str, MemberSnapshot | None]:
    """Return, by event id, each member fact's snapshot opened with its key; None for an erased member's.

    TransientError while the registry's key service is away (the batch waits and is retried,
    nothing is dead-lettered); PermanentError for a sealed snapshot that does not open with its
    member's key (tampered or copied from another member).
    """
    snaps = [e for e in events if isinstance(e.data, MemberRegistered | MemberUpdated)]
    sealed = [e.data.member.member_id for e in snaps if not isinstance(e.data.member, MemberSnapshot)]
    found: dict[str, shredding.MemberKey | None] = {}
    if sealed:
        try:
            found = await keys.fetch(sealed)
        except shredding.KeysUnavailable as exc:
            raise TransientError(str(exc)) from None
    opened: dict[str, MemberSnapshot | None] = {}
    for e in snaps:
        member_id = e.data.member.member_id
        try:
            opened[e.id] = open_snapshot(e.data.member, found.get(member_id))
        except shredding.KeyShredded:
            opened[e.id] = None
            log.info("snapshot_of_erased_member_skipped", member_id=member_id, event_id=e.id)
        except shredding.SealBroken as exc:
            raise PermanentError(str(exc)) from None
    return opened

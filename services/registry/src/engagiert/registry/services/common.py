"""Holds what every group of use cases shares: the errors, the store, the clock and the records of facts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from engagiert.registry import domain
from engagiert.registry.domain import HoursEntry, RunningFigures
from engagiert.registry.repository import Doc, Repository
from engagiert.shared.contracts import Engagement, MemberSnapshot, SealedMemberSnapshot, seal_snapshot
from engagiert.shared.contracts.base import EventData
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.shredding import MemberKey


class NotFound(Exception):
    """The resource does not exist in this municipality."""


class DuplicateMember(Exception):
    """A member with the same e-mail, or the same name and date of birth, exists in the municipality."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(existing_id)
        self.existing_id = existing_id


class PreviouslyErased(Exception):
    """The person was erased from the register; only staff register them again, on purpose."""


class AlreadyExists(Exception):
    """A resource with this key exists."""


class PreconditionFailed(Exception):
    """The resource changed since the caller read it (its ``If-Match`` names an older revision)."""


class InvalidChange(Exception):
    """The change breaks a rule (says which in the message)."""


LOCAL_ERASURE_SALT = b"engagiert-local-erasure-salt-never-in-production"
"""The salt of erased people's identity hashes in local runs and tests; production sets its own."""


def utc_now() -> datetime:
    """Return the current time in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(kw_only=True)
class UseCases:
    """Holds what every group of use cases needs: the store, the source of its facts, the relay's wake-up, the clock."""

    repo: Repository
    source: str
    notify: Callable[[], None]
    clock: Callable[[], datetime]
    erasure_salt: bytes = LOCAL_ERASURE_SALT

    async def previously_erased(self, ags: str, keys: list[str]) -> bool:
        """Return whether any identity key belongs to a person erased from ``ags``."""
        return bool(keys) and bool(await self.repo.erased_among(ags, self.erased_marks(ags, keys)))

    def erased_marks(self, ags: str, keys: list[str]) -> list[str]:
        """Return the salted hashes of identity keys in ``ags``."""
        return domain.erased_marks(ags, keys, salt=self.erasure_salt)

    async def member_keys(self, member_ids: Sequence[str]) -> dict[str, MemberKey]:
        """Return the keys of members, creating the missing ones; NotFound for a member whose key was shredded."""
        created = await self.repo.create_member_keys(list(member_ids), now=self.clock())
        found: dict[str, MemberKey | None] = dict(created)
        if missing := [m for m in member_ids if m not in created]:
            found.update(await self.repo.member_keys_of(missing))
        keys: dict[str, MemberKey] = {}
        for m in member_ids:
            key = found.get(m)
            if key is None:
                raise NotFound(m)  # erased: nothing of theirs is written again
            keys[m] = key
        return keys

    @staticmethod
    def sealed(snapshot: MemberSnapshot, key: MemberKey) -> SealedMemberSnapshot:
        """Return the snapshot as it goes on the topic: its personal part sealed with the member's key."""
        return seal_snapshot(snapshot, key)

    def _record(self, data: EventData) -> OutgoingRecord:
        """Return the record of a fact, with the municipality extension (snapshots carry it inside)."""
        member = getattr(data, "member", None)
        municipality = getattr(data, "municipality", None) or (member.municipality if member else None)
        return make_record(data, source=self.source, municipality=municipality)


def engagements_of(doc: Doc) -> list[Engagement]:
    """Return the engagements of a member document."""
    return [Engagement.model_validate(e) for e in doc.get("engagements") or []]


async def running_figures_of(
    repo: Repository, member_ids: Sequence[str], stored: dict[str, Doc] | None = None, *, today: date
) -> dict[str, RunningFigures]:
    """Return members' running hours figures: as kept, or read once from the entries of a member from before."""
    if stored is None:
        stored = await repo.figures_of(member_ids)
    figures = {
        m: RunningFigures(years=dict(doc.get("years") or {}), days=dict(doc.get("days") or {}))
        for m, doc in stored.items()
    }
    missing = [m for m in member_ids if m not in stored]
    if missing:
        entries: dict[str, list[HoursEntry]] = {m: [] for m in missing}
        for h in await repo.hours_of(missing):
            entries[h["member_id"]].append(domain.entry_from_document(h))
        figures.update({m: domain.running_figures(entries[m], today=today) for m in missing})
    return figures

"""Holds what every group of use cases shares: the repository, settings, clock, relay nudge and records of facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engagiert.events.config import EventsSettings
from engagiert.events.repository import Repository
from engagiert.shared.contracts import EventData
from engagiert.shared.envelope import OutgoingRecord, make_record
from engagiert.shared.signing import CardKeyRing, LinkKeyRing


def no_nudge() -> None:
    """Wake no relay (the rebuild command and tests without one)."""


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass(kw_only=True)
class UseCases:
    """The repository, settings, clock and relay nudge of a group of use cases; subclasses add their collaborators."""

    repo: Repository
    settings: EventsSettings
    notify: Callable[[], None] = no_nudge
    clock: Callable[[], datetime] = utc_now
    _secret: LinkKeyRing = field(init=False, repr=False)
    _cards: CardKeyRing = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._secret = self.settings.link_keys()
        self._cards = self.settings.card_keys()

    def _record(self, data: EventData, event_id: str | None = None) -> OutgoingRecord:
        return make_record(data, source=self.settings.source, event_id=event_id)

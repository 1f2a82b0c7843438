"""Holds the events service's use cases, one module per aggregate, and the container that wires them together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engagiert.events.config import EventsSettings
from engagiert.events.repository import Repository
from engagiert.events.services.common import UseCases, no_nudge, utc_now
from engagiert.events.services.figures import Figures
from engagiert.events.services.honours import Grant, Honours, Reject
from engagiert.events.services.invitation_mails import InvitationMails
from engagiert.events.services.invitations import Invitations
from engagiert.events.services.member_read_model import MemberReadModel
from engagiert.events.services.recognition_events import EventCreate, EventUpdate, RecognitionEvents
from engagiert.events.services.rsvp import Rsvp
from engagiert.shared.figures import NetworkCache
from engagiert.shared.shredding import MemberKeys

__all__ = [
    "EventCreate",
    "EventUpdate",
    "EventsService",
    "Figures",
    "Grant",
    "Honours",
    "InvitationMails",
    "Invitations",
    "MemberReadModel",
    "RecognitionEvents",
    "Reject",
    "Rsvp",
    "UseCases",
]


class EventsService:
    """Holds the groups of use cases, wired together; handlers, routes and the background loop call these."""

    def __init__(
        self,
        repo: Repository,
        settings: EventsSettings,
        *,
        notify: Callable[[], None] = no_nudge,
        clock: Callable[[], datetime] = utc_now,
        figures_cache: NetworkCache | None = None,
        keys: MemberKeys | None = None,
    ) -> None:
        self.repo = repo
        self.invitation_mails = InvitationMails(repo=repo, settings=settings, notify=notify, clock=clock)
        self.recognition_events = RecognitionEvents(
            repo=repo, settings=settings, notify=notify, clock=clock, mails=self.invitation_mails
        )
        self.invitations = Invitations(
            repo=repo,
            settings=settings,
            notify=notify,
            clock=clock,
            events=self.recognition_events,
            mails=self.invitation_mails,
        )
        self.rsvp = Rsvp(repo=repo, settings=settings, notify=notify, clock=clock, mails=self.invitation_mails)
        self.honours = Honours(repo=repo, settings=settings, notify=notify, clock=clock)
        self.figures = Figures(
            repo=repo, settings=settings, notify=notify, clock=clock, network_cache=figures_cache or NetworkCache(0)
        )
        self.member_read_model = MemberReadModel(
            repo=repo,
            settings=settings,
            notify=notify,
            clock=clock,
            honours=self.honours,
            rsvp=self.rsvp,
            keys=keys,
        )

    async def run_due_work(self) -> dict[str, int]:
        """Do what is due now (the background loop calls it each round); return counts per kind of work."""
        return {
            "cancellation_mails": await self.invitation_mails.finish_cancellations(),
            "change_mails": await self.invitation_mails.finish_changes(),
            "reminders_rescheduled": await self.invitation_mails.finish_reschedules(),
            # renewals first: a card the loop finds already past its validity is still offered one
            "renewals_proposed": await self.honours.propose_renewals(),
            "honours_expired": await self.honours.expire_honours(),
        }

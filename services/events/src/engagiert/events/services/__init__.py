"""Holds the events service's use cases, one module per aggregate, and wires them to each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engagiert.events.config import EventsSettings
from engagiert.events.repository import Repository
from engagiert.events.services.base import UseCase, no_nudge, utc_now
from engagiert.events.services.honours import Grant, Honours, Reject
from engagiert.events.services.invitation_mails import InvitationMails
from engagiert.events.services.invitations import Invitations
from engagiert.events.services.member_read_model import MemberReadModel
from engagiert.events.services.recognition_events import EventCreate, EventUpdate, RecognitionEvents
from engagiert.events.services.rsvp import Rsvp

__all__ = [
    "EventCreate",
    "EventUpdate",
    "Grant",
    "Honours",
    "InvitationMails",
    "Invitations",
    "MemberReadModel",
    "RecognitionEvents",
    "Reject",
    "Rsvp",
    "UseCase",
    "UseCases",
]


@dataclass(frozen=True, kw_only=True)
class UseCases:
    """The service's use cases over one repository, each given the collaborators it calls."""

    recognition_events: RecognitionEvents
    invitations: Invitations
    invitation_mails: InvitationMails
    rsvp: Rsvp
    honours: Honours
    member_read_model: MemberReadModel

    @classmethod
    def build(
        cls,
        *,
        repo: Repository,
        settings: EventsSettings,
        notify: Callable[[], None] = no_nudge,
        clock: Callable[[], datetime] = utc_now,
    ) -> UseCases:
        """Return the use cases over ``repo``, wired to each other."""
        mails = InvitationMails(repo=repo, settings=settings, notify=notify, clock=clock)
        events = RecognitionEvents(repo=repo, settings=settings, notify=notify, clock=clock, mails=mails)
        honours = Honours(repo=repo, settings=settings, notify=notify, clock=clock)
        return cls(
            recognition_events=events,
            invitations=Invitations(
                repo=repo, settings=settings, notify=notify, clock=clock, events=events, mails=mails
            ),
            invitation_mails=mails,
            rsvp=Rsvp(repo=repo, settings=settings, notify=notify, clock=clock, mails=mails),
            honours=honours,
            member_read_model=MemberReadModel(
                repo=repo, settings=settings, notify=notify, clock=clock, honours=honours
            ),
        )

    async def run_due_work(self) -> dict[str, int]:
        """Do what is due now (the background loop calls it each round); return counts per kind of work."""
        return {
            "cancellation_mails": await self.invitation_mails.finish_cancellations(),
            "reminders_rescheduled": await self.invitation_mails.finish_reschedules(),
            # renewals first: a card the loop finds already past its validity is still offered one
            "renewals_proposed": await self.honours.propose_renewals(),
            "honours_expired": await self.honours.expire_honours(),
        }

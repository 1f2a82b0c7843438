"""Wires the events service: broker, HTTP app, store, lifespan; nothing else."""

from __future__ import annotations

from fastapi import FastAPI

from engagiert.events import api, repository
from engagiert.events.config import EventsSettings
from engagiert.events.handlers import member_events_handler
from engagiert.events.repository import Repository
from engagiert.events.scheduler import scheduler_loop
from engagiert.events.services import EventsService
from engagiert.shared import topics
from engagiert.shared.contracts import (
    AttendanceRecorded,
    ConfirmErasure,
    HonourExpired,
    HonourGranted,
    HonourProposed,
    HonourRejected,
    HonourRevoked,
    InvitationIssued,
    InvitationPromoted,
    InvitationResponded,
    InvitationWithdrawn,
    NotificationCancelRequested,
    NotificationRequested,
    RecognitionEventCancelled,
    RecognitionEventChanged,
    RecognitionEventScheduled,
)
from engagiert.shared.figures import NetworkCache
from engagiert.shared.runtime import ServiceRuntime


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    """Return the events service's app, ready for uvicorn."""
    settings = settings or EventsSettings()
    runtime = ServiceRuntime(settings, title="engagiert events", description="The events service of engagiert.")

    keys = settings.member_keys()  # one cache of members' keys for the process
    figures_cache = NetworkCache(settings.figures_cache_seconds)  # one per process: use cases are per request

    def use_cases() -> EventsService:
        return EventsService(
            Repository(runtime.db), settings, notify=runtime.relay.notify, figures_cache=figures_cache, keys=keys
        )

    runtime.app.state.use_cases = use_cases
    runtime.on_startup(repository.ensure_indexes)
    for name in repository.OUTBOX_COLLECTIONS:
        runtime.outbox(name)
    handler = member_events_handler(use_cases)
    for topic, contract in (
        (settings.members_topic, topics.REGISTRY_MEMBERS),
        (settings.engagement_topic, topics.REGISTRY_ENGAGEMENT),
    ):
        runtime.subscribe(topic, handler).contract_topic = contract
    runtime.background(scheduler_loop(use_cases, settings.scheduler_seconds))
    runtime.publishes(
        topics.EVENTS_RECOGNITION,
        [
            RecognitionEventScheduled,
            RecognitionEventChanged,
            RecognitionEventCancelled,
            InvitationIssued,
            InvitationResponded,
            InvitationPromoted,
            InvitationWithdrawn,
            AttendanceRecorded,
            HonourProposed,
            HonourGranted,
            HonourRejected,
            HonourExpired,
            HonourRevoked,
        ],
    )
    runtime.publishes(topics.NOTIFICATIONS_REQUESTS, [NotificationRequested, NotificationCancelRequested])
    runtime.publishes(topics.REGISTRY_ERASURE_CONFIRMATIONS, [ConfirmErasure])
    for router in api.ROUTERS:
        runtime.app.include_router(router)
    # The public routes: rate-limited per client; their paths carry the secret (masked in logs, no-store).
    runtime.edge("/rsvp/{token}", public=True, token=True)
    runtime.edge("/v1/honours/verify/{code}", public=True, token=True)
    runtime.edge("/v1/honours/keys", public=True)
    return runtime.app


app = create_app()

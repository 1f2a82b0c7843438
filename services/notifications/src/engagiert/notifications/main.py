"""Wires the notifications service: broker, HTTP app, store, mailer, sender loop; nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.notifications import api
from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.handlers import members_handler, requests_handler
from engagiert.notifications.mailer import SmtpMailer
from engagiert.notifications.repository import CONTACTS, DELIVERIES, SENDS, Repository
from engagiert.notifications.services import Notifications
from engagiert.notifications.services.unsubscribe import UNSUBSCRIBE_PATH
from engagiert.shared import topics
from engagiert.shared.contracts import (
    ConfirmErasure,
    DeliveryFailed,
    DeliverySent,
    DeliverySuppressed,
    WithdrawConsent,
)
from engagiert.shared.runtime import ServiceRuntime


def build_mailer(settings: NotificationsSettings) -> SmtpMailer:
    """Return the SMTP mailer configured by ``settings``."""
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout=settings.smtp_timeout_seconds,
        pool_size=settings.smtp_pool_size,
        rate_per_second=settings.smtp_rate_per_second,
    )


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """Return the notifications service's app, ready for uvicorn."""
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(
        settings, title="engagiert notifications", description="The notifications service of engagiert."
    )
    mailer = build_mailer(settings)
    service: Notifications | None = None

    async def start(db: AsyncDatabase[dict[str, Any]]) -> None:
        nonlocal service
        repo = Repository(db)
        await repo.ensure_indexes()
        service = Notifications.build(repo=repo, settings=settings, mailer=mailer, on_outbox=runtime.relay.notify)
        runtime.app.state.notifications = service

    def current() -> Notifications:
        if service is None:
            raise RuntimeError("the service has not started")
        return service

    async def handle_members(events: Any) -> None:
        await members_handler(current().contacts)(events)

    async def handle_requests(events: Any) -> None:
        await requests_handler(current().requests)(events)

    async def sender() -> None:
        try:
            await current().sender.run_sender()
        finally:
            await mailer.close()

    runtime.on_startup(start)
    members = runtime.subscribe(settings.members_topic, handle_members)
    members.contract_topic = topics.REGISTRY_MEMBERS
    requests = runtime.subscribe(settings.requests_topic, handle_requests)
    requests.contract_topic = topics.NOTIFICATIONS_REQUESTS
    runtime.publishes(topics.NOTIFICATIONS_DELIVERIES, [DeliverySent, DeliveryFailed, DeliverySuppressed])
    runtime.publishes(topics.REGISTRY_ERASURE_CONFIRMATIONS, [ConfirmErasure])
    runtime.publishes(topics.REGISTRY_INBOUND, [WithdrawConsent])
    runtime.outbox(DELIVERIES)
    runtime.outbox(SENDS)  # the delivery.sent facts, in the send journal
    runtime.outbox(CONTACTS)  # erasure confirmations and unsubscribes (commands to the registry)
    # Volunteers follow these links from their mails: no token, rate-limited per client, the path's token masked.
    runtime.edge(UNSUBSCRIBE_PATH, public=True, token=True, max_body_bytes=1024)
    runtime.background(sender)
    runtime.app.state.mailer = mailer
    for router in api.ROUTERS:
        runtime.app.include_router(router)
    return runtime.app


app = create_app()

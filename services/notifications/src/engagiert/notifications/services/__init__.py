"""The use cases of notifications, one module per aggregate, and the container that wires them together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.mailer import SmtpMailer
from engagiert.notifications.rendering import Renderer
from engagiert.notifications.repository import Repository
from engagiert.notifications.services.branding import Branding
from engagiert.notifications.services.contacts import Contacts
from engagiert.notifications.services.deliveries import DeliveryLog
from engagiert.notifications.services.requests import Requests
from engagiert.notifications.services.sending import Sender
from engagiert.notifications.services.unsubscribe import Unsubscribe

__all__ = ["Branding", "Contacts", "DeliveryLog", "Notifications", "Requests", "Sender", "Unsubscribe"]


@dataclass(frozen=True, kw_only=True)
class Notifications:
    """The service's use cases, built once and passed to the handlers, the routes and the sender loop."""

    repo: Repository
    settings: NotificationsSettings
    contacts: Contacts
    requests: Requests
    sender: Sender
    deliveries: DeliveryLog
    branding: Branding
    unsubscribe: Unsubscribe

    @classmethod
    def build(
        cls, *, repo: Repository, settings: NotificationsSettings, mailer: SmtpMailer, on_outbox: Any = None
    ) -> Notifications:
        """Return the use cases wired together: requests and resends wake the sender, which reads the branding."""
        renderer = Renderer(uid_domain=settings.message_id_domain)
        branding = Branding(repo=repo, renderer=renderer)
        unsubscribe = Unsubscribe(repo=repo, settings=settings, on_outbox=on_outbox)
        sender = Sender(
            repo=repo,
            settings=settings,
            mailer=mailer,
            branding=branding,
            unsubscribe=unsubscribe,
            renderer=renderer,
            on_outbox=on_outbox,
        )
        return cls(
            repo=repo,
            settings=settings,
            contacts=Contacts(repo=repo, settings=settings, on_outbox=on_outbox, keys=settings.member_keys()),
            requests=Requests(repo=repo, wake=sender.wake),
            sender=sender,
            deliveries=DeliveryLog(repo=repo, wake=sender.wake),
            branding=branding,
            unsubscribe=unsubscribe,
        )

"""Unsubscribe: the signed one-click links of mails that are not transactional, and the member's withdrawal.

The link names the municipality, the member and the channel to withdraw (e-mail: the registry's
consent knows channels, not kinds of letter), signed like the RSVP links with the shared link
key ring (purpose ``unsubscribe``). Following it sends the registry a ``WithdrawConsent``
command through the contact's outbox: the registry owns consent and answers with its usual
``member.consent-changed`` fact, which this service's contacts read model follows.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engagiert.notifications.config import NotificationsSettings
from engagiert.notifications.domain import utcnow
from engagiert.notifications.repository import Repository
from engagiert.shared.contracts import WithdrawConsent
from engagiert.shared.contracts.base import AGS_PATTERN
from engagiert.shared.envelope import make_record
from engagiert.shared.logging import get_logger
from engagiert.shared.signing import LinkError, LinkKeyRing, sign_link, verify_link

log = get_logger(__name__)

UNSUBSCRIBE_PATH = "/unsubscribe/{token}"
"""The public route of the links (mails' ``List-Unsubscribe`` and their visible link)."""

WITHDRAWN_CHANNEL = "email"
"""What a link withdraws: the consent to e-mail (post and phone stay)."""


@dataclass(frozen=True)
class UnsubscribeLink:
    """What a verified link names."""

    municipality: str
    member_id: str
    channel: str
    token: str


@dataclass(kw_only=True)
class Unsubscribe:
    """Signs unsubscribe links and turns a followed one into the registry's command (once per link)."""

    repo: Repository
    settings: NotificationsSettings
    on_outbox: object = None
    """Called after a write that added outbox entries (``runtime.relay.notify``)."""
    _keys: LinkKeyRing = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._keys = self.settings.link_keys()

    def url(self, *, municipality: str, member_id: str, now: datetime | None = None) -> str:
        """Return the signed unsubscribe link of a member's mail (valid ``UNSUBSCRIBE_LINK_DAYS``)."""
        expires = (now or utcnow()) + timedelta(days=self.settings.unsubscribe_link_days)
        subject = f"{municipality}:{WITHDRAWN_CHANNEL}:{member_id}"
        token = sign_link(self._keys, purpose="unsubscribe", subject=subject, expires_at=expires)
        return self.settings.public_base_url.rstrip("/") + UNSUBSCRIBE_PATH.format(token=token)

    def open(self, token: str) -> UnsubscribeLink:
        """Return what a genuine, unexpired link names; raise :class:`LinkError` otherwise."""
        subject, _ = verify_link(self._keys, token, purpose="unsubscribe", now=utcnow())
        municipality, _, rest = subject.partition(":")
        channel, _, member_id = rest.partition(":")
        if not re.fullmatch(AGS_PATTERN, municipality) or channel != WITHDRAWN_CHANNEL or not member_id:
            raise LinkError("malformed")
        return UnsubscribeLink(municipality=municipality, member_id=member_id, channel=channel, token=token)

    async def withdraw(self, token: str) -> UnsubscribeLink:
        """Ask the registry to withdraw the link's channel; the same link asks once, however often it is followed.

        A member this service does not know (erased, or of no contact here) has nothing to withdraw:
        the answer is the same, so a link tells nobody whether its member still exists.
        """
        link = self.open(token)
        now = utcnow()
        # The command's id names the link: a mail program's repeated POSTs are one command (and one at the registry).
        event_id = f"unsubscribe-{hashlib.sha256(token.encode()).hexdigest()[:32]}"
        command = WithdrawConsent(
            municipality=link.municipality, member_id=link.member_id, channels=[WITHDRAWN_CHANNEL], requested_at=now
        )
        record = make_record(command, source=self.settings.source, event_id=event_id)
        if await self.repo.request_withdrawal(link.member_id, link.municipality, event_id, record, now):
            log.info("unsubscribe_requested", municipality=link.municipality, member_id=link.member_id)
            if callable(self.on_outbox):
                self.on_outbox()
        return link

"""Owns the inbound commands of other systems: register members, report hours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engagiert.registry import domain
from engagiert.registry.domain import ConsentIn, EngagementIn, HoursIn, MemberCreate
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import DuplicateMember, NotFound, PreviouslyErased, UseCases, engagements_of
from engagiert.registry.services.erasure import Erasure
from engagiert.registry.services.hours import Hours
from engagiert.registry.services.members import Members
from engagiert.shared.contracts import (
    Consent,
    Contact,
    Engagement,
    ExternalRef,
    MemberConsentChanged,
    RegisterMember,
    ReportHours,
    WithdrawConsent,
)
from engagiert.shared.contracts.base import EventData
from engagiert.shared.envelope import Envelope
from engagiert.shared.logging import get_logger
from engagiert.shared.messaging.consumer import PermanentError

log = get_logger(__name__)


@dataclass(kw_only=True)
class Inbound(UseCases):
    """Runs the inbound commands by calling the members', hours' and erasure use cases."""

    members: Members
    hours: Hours
    erasure: Erasure

    async def apply_inbound(self, events: Sequence[Envelope[Any]]) -> None:
        """Apply a batch of inbound commands; PermanentError for a command that can never apply."""
        munis = {e.data.municipality for e in events}
        known = await self.repo.existing_municipalities(list(munis))
        for e in events:
            if e.data.municipality not in known:
                raise PermanentError(f"unknown municipality {e.data.municipality}")
        hours = [e for e in events if isinstance(e.data, ReportHours)]
        for e in events:
            if isinstance(e.data, RegisterMember):
                try:
                    await self.register_from(e.id, e.data, source=e.source)
                except NotFound as exc:
                    raise PermanentError(f"member {exc} was erased meanwhile") from None
            elif isinstance(e.data, WithdrawConsent):
                await self.withdraw_from(e.id, e.data)
        if hours:
            await self.report_hours_from(hours)

    async def withdraw_from(self, event_id: str, cmd: WithdrawConsent) -> None:
        """Withdraw the channels a member unsubscribed from, once per event id; an erased member has none left."""
        try:
            await self.members.withdraw_consent(
                cmd.municipality, cmd.member_id, channels=cmd.channels, event_id=event_id
            )
        except NotFound:
            # Erased (or never here): nothing to withdraw, and nothing a retry would change.
            log.info("consent_withdrawal_for_unknown_member", municipality=cmd.municipality, event_id=event_id)
            return
        log.info("consent_withdrawn", municipality=cmd.municipality, member_id=cmd.member_id, source=cmd.source)

    async def register_from(self, event_id: str, cmd: RegisterMember, *, source: str) -> None:
        """Register or update the member named by an external reference (idempotent by event id)."""
        ags = cmd.municipality
        key = domain.ext_key(cmd.external_ref)
        found = await self.repo.members_by_ext_keys(ags, [key])
        target = found[0]["_id"] if found else None
        if target is None:
            dup = await self.repo.find_duplicate(
                ags,
                email_key=domain.email_key(cmd.email),
                name_dob_key=domain.name_dob_key(cmd.given_name, cmd.family_name, cmd.date_of_birth),
            )
            target = dup["_id"] if dup else None
        if target is None:
            org_id = await self._org_id(ags, cmd.organisation_name)
            engagements = []
            if cmd.field is not None:
                engagements.append(
                    EngagementIn(
                        organisation_id=org_id,
                        organisation_name=cmd.organisation_name,
                        field=cmd.field,
                        role=cmd.role,
                        since=cmd.since or self.clock().date(),
                    )
                )
            data = MemberCreate(
                given_name=cmd.given_name,
                family_name=cmd.family_name,
                date_of_birth=cmd.date_of_birth,
                language=cmd.language,
                contact=Contact(email=cmd.email, phone=cmd.phone, postal_address=cmd.postal_address),
                consent=ConsentIn(channels=cmd.consent_channels or [], source=source[:200]),
                engagements=engagements,
                external_refs=[cmd.external_ref],
            )
            member_id = domain.stable_id("m", ags, key)
            if any(d.get("erased") for d in await self.repo.members_by_ids([member_id])):
                member_id = domain.stable_id("m", ags, key, event_id)  # never revive an erased person's id
            try:
                await self.members.register(ags, data, member_id=member_id)
                return
            except DuplicateMember as exc:  # a redelivery or a race created it meanwhile
                target = exc.existing_id
            except PreviouslyErased:
                raise PermanentError(
                    f"previously-erased: the person of external reference {cmd.external_ref.system} was erased "
                    "from the register; only staff register them again"
                ) from None
        await self._update_from(event_id, cmd, target, source=source)

    async def _update_from(self, event_id: str, cmd: RegisterMember, member_id: str, *, source: str) -> None:
        ags = cmd.municipality

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            # A member found only by e-mail or name and birth date is linked, not taken over: the
            # command fills what the member lacks and grants nothing (see the README, "Consent").
            by_ref = domain.ext_key(cmd.external_ref) in (doc.get("ext_keys") or [])
            changes: Doc = {}
            if by_ref:
                changes.update(given_name=cmd.given_name, family_name=cmd.family_name, language=cmd.language)
            if cmd.date_of_birth is not None and (by_ref or not doc.get("date_of_birth")):
                changes["date_of_birth"] = cmd.date_of_birth.isoformat()
            contact = dict(doc.get("contact") or {})
            for name, value in (("email", cmd.email), ("phone", cmd.phone), ("postal_address", cmd.postal_address)):
                if value is not None and (by_ref or not contact.get(name)):
                    contact[name] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
            changes["contact"] = Contact.model_validate(contact).model_dump(mode="json")
            refs = [ExternalRef.model_validate(r) for r in doc.get("external_refs") or []]
            if cmd.external_ref not in refs:
                changes["external_refs"] = [r.model_dump(mode="json") for r in [*refs, cmd.external_ref]]
            facts: list[EventData] = []
            if cmd.consent_channels is not None:
                consent = domain.inbound_consent(
                    Consent.model_validate(doc.get("consent") or {}),
                    cmd.consent_channels,
                    blocked=domain.withdrawn_channels(doc),
                    may_grant=by_ref,
                    source=source[:200],
                    now=self.clock(),
                )
                if consent is not None:
                    changes["consent"] = consent.model_dump(mode="json")
                    facts.append(
                        MemberConsentChanged(member_id=member_id, municipality=ags, revision=1, consent=consent)
                    )
            if cmd.field is not None:
                current = engagements_of(doc)
                if not any(e.field == cmd.field and e.organisation_name == cmd.organisation_name for e in current):
                    new = Engagement(
                        engagement_id=domain.stable_id("e", event_id),
                        organisation_id=await self._org_id(ags, cmd.organisation_name),
                        organisation_name=cmd.organisation_name,
                        field=cmd.field,
                        role=cmd.role,
                        since=cmd.since or self.clock().date(),
                    )
                    changes["engagements"] = [e.model_dump(mode="json") for e in [*current, new]]
            return changes, facts

        await self.members.change(ags, member_id, mutate, event_id=event_id)

    async def _org_id(self, ags: str, name: str | None) -> str | None:
        if not name:
            return None
        org = await self.repo.organisation_by_name(ags, name)
        return org["_id"] if org else None

    async def report_hours_from(self, events: Sequence[Envelope[Any]]) -> None:
        """Record reported hours in bulk; entry ids derive from event ids, so a redelivery changes nothing."""
        by_id = [e for e in events if e.data.member_id]
        by_ref: dict[str, list[Envelope[Any]]] = {}
        for e in events:
            if e.data.external_ref is not None:
                by_ref.setdefault(e.data.municipality, []).append(e)
        members = {d["_id"]: d for d in await self.repo.members_by_ids([e.data.member_id for e in by_id])}
        resolved: dict[str, Doc] = {}
        for e in by_id:
            doc = members.get(e.data.member_id)
            if doc is None or doc["municipality"] != e.data.municipality or doc.get("erased"):
                raise PermanentError(f"unknown member {e.data.member_id} in municipality {e.data.municipality}")
            resolved[e.id] = doc
        for ags, evs in by_ref.items():
            keys = list({domain.ext_key(e.data.external_ref) for e in evs})
            found: dict[str, Doc] = {}
            for doc in await self.repo.members_by_ext_keys(ags, keys):
                for k in doc.get("ext_keys") or []:
                    found[k] = doc
            for e in evs:
                key = domain.ext_key(e.data.external_ref)
                if key not in found:
                    system = e.data.external_ref.system
                    raise PermanentError(f"unknown external reference of system {system} in municipality {ags}")
                resolved[e.id] = found[key]
        org_ids: dict[tuple[str, str], str | None] = {}
        batch: list[tuple[str, Doc, HoursIn, str]] = []
        for e in events:
            cmd: ReportHours = e.data
            org_key = (cmd.municipality, cmd.organisation_name or "")
            if org_key not in org_ids:
                org_ids[org_key] = await self._org_id(cmd.municipality, cmd.organisation_name)
            item = HoursIn(
                hours=cmd.hours, date_from=cmd.date_from, date_to=cmd.date_to, organisation_id=org_ids[org_key]
            )
            batch.append((domain.stable_id("h", e.id), resolved[e.id], item, cmd.reported_by or e.source))
        await self.hours.save(batch)

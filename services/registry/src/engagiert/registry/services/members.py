"""Owns the members: register, read, list, change, status, consent and the duplicate checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from engagiert.registry import domain
from engagiert.registry.domain import MemberCreate, MemberUpdate
from engagiert.registry.repository import Conflict, Doc
from engagiert.registry.services.common import (
    DuplicateMember,
    InvalidChange,
    NotFound,
    PreviouslyErased,
    UseCases,
    engagements_of,
    running_figures_of,
)
from engagiert.registry.services.municipalities import Municipalities
from engagiert.shared.contracts import (
    Consent,
    EngagementEnded,
    EngagementStarted,
    HoursTotals,
    MemberConsentChanged,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
)
from engagiert.shared.contracts.base import Channel, EventData
from engagiert.shared.envelope import OutgoingRecord
from engagiert.shared.logging import get_logger
from engagiert.shared.shredding import MemberKey

log = get_logger(__name__)


@dataclass(kw_only=True)
class Members(UseCases):
    """Runs the use cases of members; every change is one revision-guarded write with its facts."""

    municipalities: Municipalities

    # -- member reads --------------------------------------------------------------------------------

    async def totals_for(self, docs: Sequence[Doc]) -> dict[str, HoursTotals]:
        """Return the derived figures of members (from their running figures, one query)."""
        today = self.clock().date()
        figures = await running_figures_of(self.repo, [d["_id"] for d in docs], today=today)
        return {d["_id"]: figures[d["_id"]].totals(engagements_of(d), today=today) for d in docs}

    async def member(self, ags: str, member_id: str) -> Doc:
        """Return a living member of ``ags`` with figures; NotFound for unknown or erased."""
        doc = await self.repo.get_member(ags, member_id)
        if doc is None or doc.get("erased"):
            raise NotFound(member_id)
        return await self.view(doc)

    async def view(self, doc: Doc, member_totals: HoursTotals | None = None) -> Doc:
        """Return the public view of a member document."""
        if member_totals is None:
            member_totals = (await self.totals_for([doc]))[doc["_id"]]
        snap = domain.snapshot(doc, member_totals).model_dump(mode="json")
        periods = domain.engagement_periods(engagements_of(doc), today=self.clock().date())
        snap["engagement_periods"] = [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in periods]
        snap["engagement_breaks"] = [
            {"start": p.start.isoformat(), "end": p.end.isoformat()} for p in domain.engagement_breaks(periods)
        ]
        return snap

    async def list_members(
        self,
        ags: str,
        *,
        status: str | None = None,
        organisation_id: str | None = None,
        field: str | None = None,
        name: str | None = None,
        ids: list[str] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Doc], str | None]:
        """Return a page of members and the cursor of the next page (None at the end)."""
        docs = await self.repo.list_members(
            ags,
            status=status,
            organisation_id=organisation_id,
            field=field,
            name=domain.normalise_name(name) if name else None,
            ids=ids,
            after=cursor,
            limit=limit + 1,
        )
        more = len(docs) > limit
        docs = docs[:limit]
        figures = await self.totals_for(docs)
        items = [await self.view(d, figures[d["_id"]]) for d in docs]
        return items, (docs[-1]["_id"] if more and docs else None)

    # -- member writes -------------------------------------------------------------------------------

    async def register(
        self, ags: str, data: MemberCreate, *, member_id: str | None = None, allow_previously_erased: bool = False
    ) -> Doc:
        """Register a member; DuplicateMember when registered already, PreviouslyErased for an erased person."""
        await self.municipalities.municipality(ags)
        now = self.clock()
        email_key = domain.email_key(data.contact.email)
        name_dob_key = domain.name_dob_key(data.given_name, data.family_name, data.date_of_birth)
        existing = await self.repo.find_duplicate(ags, email_key=email_key, name_dob_key=name_dob_key)
        if existing is not None:
            raise DuplicateMember(existing["_id"])
        ext_keys = [domain.ext_key(r) for r in data.external_refs]
        if ext_keys:
            taken = await self.repo.members_by_ext_keys(ags, ext_keys)
            if taken:
                raise DuplicateMember(taken[0]["_id"])
        keys = domain.identity_keys(email=email_key, name_dob=name_dob_key, ext_keys=ext_keys)
        if not allow_previously_erased and await self.previously_erased(ags, keys):
            raise PreviouslyErased()
        doc = domain.member_document(
            member_id=member_id or domain.new_id("m"),
            ags=ags,
            data=data,
            engagements=domain.engagements_from(data.engagements),
            consent=domain.consent_from(data.consent, now=now),
            now=now,
        )
        figures = self.fresh_totals(doc)
        key = (await self.member_keys([doc["_id"]]))[doc["_id"]]
        if not await self.repo.insert_member(doc, self.registered_records(doc, figures, key)):
            raise DuplicateMember(doc["_id"])
        self.notify()
        log.info("member_registered", municipality=ags, member_id=doc["_id"], previously_erased=allow_previously_erased)
        return await self.view(doc, figures)

    def fresh_totals(self, doc: Doc) -> HoursTotals:
        """Return the figures of a member who has no hours yet."""
        return domain.totals([], engagements_of(doc), today=self.clock().date())

    def registered_records(self, doc: Doc, figures: HoursTotals, key: MemberKey) -> list[OutgoingRecord]:
        """Return the records of a new member: MemberRegistered (sealed) and its engagements started (and ended)."""
        records = [self._record(MemberRegistered(member=self.sealed(domain.snapshot(doc, figures), key)))]
        for e in engagements_of(doc):
            records.append(
                self._record(EngagementStarted(member_id=doc["_id"], municipality=doc["municipality"], engagement=e))
            )
            if e.until is not None:
                records.append(
                    self._record(
                        EngagementEnded(
                            member_id=doc["_id"],
                            municipality=doc["municipality"],
                            engagement_id=e.engagement_id,
                            until=e.until,
                        )
                    )
                )
        return records

    async def change(
        self,
        ags: str,
        member_id: str,
        mutate: Callable[[Doc], Awaitable[tuple[Doc, list[EventData]]]],
        *,
        event_id: str | None = None,
        attempts: int = 5,
    ) -> Doc:
        """Load a member, let ``mutate`` return the new fields and extra facts, save with the events.

        The write is guarded by the revision, so concurrent changes never overwrite each other:
        the loser reloads and applies its change again.
        """
        for _ in range(attempts):
            doc = await self.repo.get_member(ags, member_id)
            if doc is None or doc.get("erased"):
                raise NotFound(member_id)
            if event_id is not None and event_id in (doc.get("_applied") or []):
                return await self.view(doc)
            changes, facts = await mutate(doc)
            after = {**doc, **changes}
            changed = domain.changed_fields(doc, after, domain.MEMBER_FIELDS)
            if not changed:
                return await self.view(doc)
            revision = doc["revision"] + 1
            after["revision"] = revision
            after.update(domain.derived_keys(after))
            dup = await self.repo.find_duplicate(
                ags,
                email_key=after.get("email_key"),
                name_dob_key=after.get("name_dob_key"),
                exclude=member_id,
            )
            if dup is not None and (
                after.get("email_key") != doc.get("email_key") or after.get("name_dob_key") != doc.get("name_dob_key")
            ):
                raise DuplicateMember(dup["_id"])
            figures = (await self.totals_for([after]))[member_id]
            records = [
                self._record(f.model_copy(update={"revision": revision}) if hasattr(f, "revision") else f)
                for f in facts
            ]
            started, ended = domain.engagement_changes(engagements_of(doc), engagements_of(after))
            records += [
                self._record(EngagementStarted(member_id=member_id, municipality=ags, engagement=e)) for e in started
            ]
            records += [
                self._record(
                    EngagementEnded(member_id=member_id, municipality=ags, engagement_id=e.engagement_id, until=e.until)
                )
                for e in ended
                if e.until is not None
            ]
            key = (await self.member_keys([member_id]))[member_id]
            sealed = self.sealed(domain.snapshot(after, figures), key)
            records.append(self._record(MemberUpdated(member=sealed, changed=changed)))
            set_fields = {k: after[k] for k in (*changed, *domain.derived_keys(after).keys())}
            set_fields.update(revision=revision, updated_at=self.clock())
            if "consent" in changed:  # kept beside consent, never published: what only staff may grant again
                set_fields["withdrawn_channels"] = domain.withdrawn_after(
                    domain.withdrawn_channels(doc),
                    Consent.model_validate(doc.get("consent") or {}),
                    Consent.model_validate(after.get("consent") or {}),
                )
            try:
                await self.repo.replace_member_guarded(
                    doc, expected_revision=doc["revision"], set_fields=set_fields, records=records, event_id=event_id
                )
            except Conflict:
                continue
            self.notify()
            return await self.view(after, figures)
        raise InvalidChange("the member changed too often meanwhile; try again")

    async def update(self, ags: str, member_id: str, data: MemberUpdate) -> Doc:
        """Change a member's data; publishes MemberUpdated (and consent/engagement facts)."""
        given = data.model_dump(exclude_unset=True)

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            changes: Doc = {}
            facts: list[EventData] = []
            for name in ("given_name", "family_name", "language"):
                if name in given and given[name] is not None:
                    changes[name] = given[name]
            if "date_of_birth" in given:
                changes["date_of_birth"] = data.date_of_birth.isoformat() if data.date_of_birth else None
            if data.contact is not None:
                changes["contact"] = data.contact.model_dump(mode="json")
            if data.juleica is not None:
                changes["juleica"] = data.juleica.model_dump(mode="json")
            if data.external_refs is not None:
                keys = [domain.ext_key(r) for r in data.external_refs]
                taken = [m for m in await self.repo.members_by_ext_keys(ags, keys) if m["_id"] != member_id]
                if taken:
                    raise DuplicateMember(taken[0]["_id"])
                changes["external_refs"] = [r.model_dump(mode="json") for r in data.external_refs]
            if data.engagements is not None:
                known = {e.engagement_id for e in engagements_of(doc)}
                unknown = [
                    e.engagement_id for e in data.engagements if e.engagement_id and e.engagement_id not in known
                ]
                if unknown:
                    raise InvalidChange(f"unknown engagement ids: {', '.join(unknown)}")
                changes["engagements"] = [e.model_dump(mode="json") for e in domain.engagements_from(data.engagements)]
            if data.consent is not None:
                consent = domain.consent_from(data.consent, now=self.clock())
                if consent.channels != Consent.model_validate(doc.get("consent") or {}).channels:
                    changes["consent"] = consent.model_dump(mode="json")
                    facts.append(
                        MemberConsentChanged(member_id=member_id, municipality=ags, revision=1, consent=consent)
                    )
            return changes, facts

        return await self.change(ags, member_id, mutate)

    async def change_status(self, ags: str, member_id: str, status: str) -> Doc:
        """Change a member's status; publishes MemberStatusChanged and MemberUpdated."""

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            previous = doc.get("status", "active")
            if previous == status:
                return {}, []
            fact = MemberStatusChanged(
                member_id=member_id,
                municipality=ags,
                revision=1,
                status=status,
                previous_status=previous,
            )
            return {"status": status}, [fact]

        return await self.change(ags, member_id, mutate)

    async def withdraw_consent(
        self, ags: str, member_id: str, *, channels: Sequence[Channel] | None = None, event_id: str | None = None
    ) -> Doc:
        """Withdraw a member's consent (all of it, or ``channels``); publishes MemberConsentChanged and MemberUpdated.

        Idempotent: withdrawing what is not given changes nothing, and ``event_id`` (a command's
        CloudEvent id) is applied once.
        """

        async def mutate(doc: Doc) -> tuple[Doc, list[EventData]]:
            consent = Consent.model_validate(doc.get("consent") or {})
            new = domain.narrowed(consent, without=channels, now=self.clock())
            if new is None:
                return {}, []
            fact = MemberConsentChanged(member_id=member_id, municipality=ags, revision=1, consent=new)
            return {"consent": new.model_dump(mode="json")}, [fact]

        return await self.change(ags, member_id, mutate, event_id=event_id)

"""Owns honours: municipal honour rules, proposals, grant and reject, renewals, expiry and the public card check."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field
from pymongo import UpdateOne

from engagiert.events import domain
from engagiert.events.repository import Doc
from engagiert.events.services.common import UseCases
from engagiert.shared.contracts import (
    HonourExpired,
    HonourGranted,
    HonourProposed,
    HonourRejected,
    HonourRevoked,
    NotificationRequested,
)
from engagiert.shared.contracts.letters import HonourGrantedLetter, HonourRejectedLetter, HonourRenewalLetter
from engagiert.shared.contracts.recognition import HonourKind
from engagiert.shared.messaging.outbox import outbox_fields, with_outbox
from engagiert.shared.problems import Problem


class Grant(BaseModel):
    """Staff grant a proposed honour."""

    model_config = ConfigDict(extra="forbid")

    card_number: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    valid_from: date | None = None


class Reject(BaseModel):
    """Staff reject a proposed honour."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


@dataclass(kw_only=True)
class Honours(UseCases):
    """Keeps honour rules, proposes, grants, rejects, renews and expires honours, and checks cards."""

    async def rules(self, municipality: str) -> domain.HonourRules:
        """Return a municipality's honour rules (state defaults where it has none)."""
        doc = await self.repo.rules(municipality)
        if not doc:
            return domain.HonourRules()
        doc.pop("_id", None)
        return domain.HonourRules.model_validate(doc)

    async def put_rules(self, municipality: str, rules: domain.HonourRules) -> domain.HonourRules:
        """Store a municipality's honour rules."""
        await self.repo.put_rules(municipality, rules.model_dump())
        return rules

    async def propose_honours(self, member_ids: Sequence[str]) -> int:
        """Propose every honour the members now qualify for and do not hold or have proposed yet."""
        if not member_ids:
            return 0
        today = self.clock().date()
        rules_cache: dict[str, domain.HonourRules] = {}
        docs: list[Doc] = []
        for member in await self.repo.members_by_ids(member_ids):
            muni = member["municipality"]
            if muni not in rules_cache:
                rules_cache[muni] = await self.rules(muni)
            for found in domain.eligible_honours(member, rules_cache[muni], today):
                honour_id = f"{member['_id']}:{found.kind}"
                proposed = HonourProposed(
                    honour_id=honour_id,
                    municipality=muni,
                    member_id=member["_id"],
                    kind=found.kind,
                    reason=found.reason,
                )
                docs.append(
                    {
                        "_id": honour_id,
                        "municipality": muni,
                        "member_id": member["_id"],
                        "kind": found.kind,
                        "status": "proposed",
                        "reason": found.reason,
                        "proposed_at": self.clock(),
                        **outbox_fields([self._record(proposed, event_id=f"{honour_id}:proposed")]),
                    }
                )
        new = await self.repo.insert_honours(docs)
        if new:
            self.notify()
        return new

    async def propose_local_award(self, municipality: str, member_id: str, title: str) -> Doc:
        """Propose a local award for a member (staff's own idea, not a rule)."""
        members = await self.repo.members_by_ids([member_id])
        if not members or members[0]["municipality"] != municipality or members[0].get("erased"):
            raise Problem(404, "Not found", "no such member")
        honour_id = f"{member_id}:local-award:{uuid.uuid4().hex[:8]}"
        proposed = HonourProposed(
            honour_id=honour_id, municipality=municipality, member_id=member_id, kind="local-award", reason=title
        )
        doc = {
            "_id": honour_id,
            "municipality": municipality,
            "member_id": member_id,
            "kind": "local-award",
            "status": "proposed",
            "reason": title,
            "proposed_at": self.clock(),
        }
        await self.repo.insert_honours([{**doc, **outbox_fields([self._record(proposed)])}])
        self.notify()
        return doc

    async def grant(self, municipality: str, honour_id: str, body: Grant) -> Doc:
        """Grant a proposed honour: card number, validity and a signed verification code."""
        honour = await self.repo.honour(municipality, honour_id)
        if honour is None:
            raise Problem(404, "Not found", "no such honour")
        if honour["status"] != "proposed":
            raise Problem(409, "Conflict", f"the honour is {honour['status']}")
        kind: HonourKind = honour["kind"]
        rules = await self.rules(municipality)
        today = self.clock().date()
        renews_from = honour.get("renews_from")
        valid_from = body.valid_from or (
            domain.renewal_valid_from(date.fromisoformat(renews_from), today) if renews_from else today
        )
        valid_until = domain.honour_valid_until(kind, rules, valid_from)
        card_number = body.card_number or f"{municipality}-{uuid.uuid4().hex[:10].upper()}"
        code = domain.sign_card(
            self._cards,
            subject=domain.card_subject(
                honour_id=honour_id, kind=kind, card_number=card_number, valid_until=valid_until
            ),
            expires_at=domain.card_code_expiry(valid_until),
        )
        granted = HonourGranted(
            honour_id=honour_id,
            municipality=municipality,
            member_id=honour["member_id"],
            kind=kind,
            card_number=card_number,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        request = NotificationRequested(
            municipality=municipality,
            member_id=honour["member_id"],
            template="honour-granted",
            params=HonourGrantedLetter(
                honour_kind=kind,
                honour_title=honour.get("title"),
                card_number=card_number,
                valid_from=valid_from,
                valid_until=valid_until,
                verify_url=f"{self.settings.public_base_url.rstrip('/')}/v1/honours/verify/{code}",
            ).to_params(),
        )
        sets = {
            "status": "granted",
            "card_number": card_number,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
            "verification_code": code,
            "granted_at": self.clock(),
        }
        updated = await self.repo.update_honour(
            {"_id": honour_id, "status": "proposed"},
            with_outbox({"$set": sets}, [self._record(granted), self._record(request)]),
        )
        if updated is None:
            raise Problem(409, "Conflict", "the honour changed meanwhile")
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def reject(self, municipality: str, honour_id: str, body: Reject) -> Doc:
        """Reject a proposed honour with a reason."""
        honour = await self.repo.honour(municipality, honour_id)
        if honour is None:
            raise Problem(404, "Not found", "no such honour")
        fact = HonourRejected(
            honour_id=honour_id,
            municipality=municipality,
            member_id=honour["member_id"],
            kind=honour["kind"],
            reason=body.reason,
        )
        letter = NotificationRequested(
            municipality=municipality,
            member_id=honour["member_id"],
            template="honour-rejected",
            params=HonourRejectedLetter(
                honour_kind=honour["kind"], honour_title=honour.get("title"), reason=body.reason
            ).to_params(),
        )
        updated = await self.repo.update_honour(
            {"_id": honour_id, "status": "proposed"},
            with_outbox(
                {"$set": {"status": "rejected", "rejection_reason": body.reason, "rejected_at": self.clock()}},
                [self._record(fact), self._record(letter, event_id=f"{honour_id}:honour-rejected")],
            ),
        )
        if updated is None:
            raise Problem(409, "Conflict", f"the honour is {honour['status']}")
        self.notify()
        updated.pop("_outbox", None)
        return updated

    async def expire_honours(self) -> int:
        """Mark granted honours whose last valid day has passed as expired (once each); return how many."""
        today = self.clock().date()
        ops: list[UpdateOne] = []
        for honour in await self.repo.granted_valid_until(before=today.isoformat(), lifelong=domain.LIFELONG):
            expired_on = date.fromisoformat(honour["valid_until"]) + timedelta(days=1)
            fact = HonourExpired(
                honour_id=honour["_id"],
                municipality=honour["municipality"],
                member_id=honour["member_id"],
                kind=honour["kind"],
                expired_on=expired_on,
            )
            ops.append(
                UpdateOne(
                    {"_id": honour["_id"], "status": "granted", "valid_until": honour["valid_until"]},
                    with_outbox(
                        {
                            "$set": {
                                "status": "expired",
                                "expired_on": expired_on.isoformat(),
                                "expired_at": self.clock(),
                            }
                        },
                        [self._record(fact, event_id=f"{honour['_id']}:expired")],
                    ),
                )
            )
        done = await self.repo.apply(self.repo.honours, ops)
        if done:
            self.notify()
        return done

    async def propose_renewals(self) -> int:
        """Propose the renewal of honours that expire within the renewal period and write to their holders (once)."""
        today = self.clock().date()
        horizon = today + timedelta(days=self.settings.honour_renewal_days)
        due = await self.repo.granted_valid_until(
            through=horizon.isoformat(), not_renewed=True, lifelong=domain.LIFELONG
        )
        if not due:
            return 0
        members = {m["_id"]: m for m in await self.repo.members_by_ids([h["member_id"] for h in due])}
        proposals: list[Doc] = []
        marks: list[UpdateOne] = []
        skips: list[UpdateOne] = []
        for honour in due:
            member = members.get(honour["member_id"]) or {}
            guard = {"_id": honour["_id"], "status": "granted", "renewal_proposed_at": {"$exists": False}}
            if member.get("erased") or member.get("status") == "left":
                skips.append(
                    UpdateOne(guard, {"$set": {"renewal_proposed_at": self.clock(), "renewal_skipped": "left"}})
                )
                continue
            valid_until: str = honour["valid_until"]
            new_id = domain.renewal_id(honour["member_id"], honour["kind"], valid_until)
            renews_from = date.fromisoformat(valid_until) + timedelta(days=1)
            reason = f"Verlängerung (bisher gültig bis {valid_until})"
            proposed = HonourProposed(
                honour_id=new_id,
                municipality=honour["municipality"],
                member_id=honour["member_id"],
                kind=honour["kind"],
                reason=reason,
                renewal_of=honour["_id"],
            )
            proposals.append(
                {
                    "_id": new_id,
                    "municipality": honour["municipality"],
                    "member_id": honour["member_id"],
                    "kind": honour["kind"],
                    "status": "proposed",
                    "reason": reason,
                    "renewal_of": honour["_id"],
                    "renews_from": renews_from.isoformat(),
                    "proposed_at": self.clock(),
                    **outbox_fields([self._record(proposed, event_id=f"{new_id}:proposed")]),
                }
            )
            request = NotificationRequested(
                municipality=honour["municipality"],
                member_id=honour["member_id"],
                template="honour-renewal",
                params=HonourRenewalLetter(
                    honour_kind=honour["kind"],
                    honour_title=honour.get("title"),
                    card_number=honour.get("card_number"),
                    valid_until=date.fromisoformat(valid_until),
                ).to_params(),
            )
            marks.append(
                UpdateOne(
                    guard,
                    with_outbox(
                        {"$set": {"renewal_proposed_at": self.clock(), "renewal_id": new_id}},
                        [self._record(request, event_id=f"{honour['_id']}:renewal:{valid_until}")],
                    ),
                )
            )
        # The proposal first (its id is fixed per validity, a repeat inserts nothing), then the
        # mark with the mail: a crash in between proposes nothing twice and still writes once.
        await self.repo.insert_honours(proposals)
        done = await self.repo.apply(self.repo.honours, marks)
        await self.repo.apply(self.repo.honours, skips)
        if done:
            self.notify()
        return done

    async def revoke_of_member(self, member_id: str) -> int:
        """Revoke an erased member's proposed and granted honours: their cards verify as revoked from now on."""
        revoked = 0
        for honour in await self.repo.live_honours_of_member(member_id):
            fact = HonourRevoked(
                honour_id=honour["_id"], municipality=honour["municipality"], member_id=member_id, kind=honour["kind"]
            )
            updated = await self.repo.update_honour(
                {"_id": honour["_id"], "status": honour["status"]},
                with_outbox(
                    {"$set": {"status": "revoked", "revoked_at": self.clock()}},
                    [self._record(fact, event_id=f"{honour['_id']}.revoked")],
                ),
            )
            revoked += updated is not None
        if revoked:
            self.notify()
        return revoked

    def card_keys(self) -> Doc:
        """Return the public JWK Set that verifies card codes (every key of the ring, the signing one first)."""
        return self._cards.jwks()

    async def verify_card(self, code: str) -> Doc:
        """Check a card's verification code (signature, validity, and that it was not withdrawn)."""
        subject = domain.verify_card_code(self._cards, self._secret, code, now=self.clock())
        try:
            honour_id, kind, card_number, valid_until = subject.split("|")
        except ValueError:
            raise domain.LinkError("malformed") from None
        honour = await self.repo.honour_by_id(honour_id)
        if honour is None or honour.get("verification_code") != code:
            raise domain.LinkError("forged")
        if honour.get("status") == "revoked":
            raise domain.LinkError("revoked")
        if honour.get("status") != "granted":
            raise domain.LinkError("forged")
        return {
            "valid": True,
            "kind": kind,
            "card_number": card_number,
            "valid_until": None if valid_until == "lifelong" else valid_until,
            "municipality": honour["municipality"],
        }

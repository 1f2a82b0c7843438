"""Serves honours to staff: the municipality's rules, the list, local awards, grant and reject."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from engagiert.events import domain
from engagiert.events.api.deps import HonourUseCases, response_doc
from engagiert.events.services import Grant, Reject
from engagiert.shared.auth import CurrentPrincipal, Reader, Staff

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["recognition"])
defaults_router = APIRouter(tags=["recognition"])


class StateThreshold(BaseModel):
    """A dated state rule of the Ehrenamtskarte NRW: from ``valid_from`` on, until before ``valid_until``."""

    valid_from: date
    valid_until: date | None
    hours_per_week: float
    hours_per_year: float


class HonourRuleDefaults(BaseModel):
    """The rules every municipality starts from: the defaults and the state's dated thresholds."""

    defaults: domain.HonourRules
    state_thresholds: list[StateThreshold]


@defaults_router.get("/v1/honour-rules/defaults", summary="The state defaults every municipality's rules start from")
async def rule_defaults(_p: CurrentPrincipal) -> HonourRuleDefaults:
    """Show the default rules and the Ehrenamtskarte NRW's dated thresholds, as the service applies them."""
    return HonourRuleDefaults(
        defaults=domain.HonourRules(),
        state_thresholds=[
            StateThreshold(
                valid_from=t.valid_from,
                valid_until=t.valid_until,
                hours_per_week=t.hours_per_week,
                hours_per_year=t.hours_per_year,
            )
            for t in domain.EHRENAMTSKARTE_NRW
        ],
    )


@router.get("/honour-rules", summary="The municipality's honour rules")
async def get_rules(ags: str, _p: Reader, uc: HonourUseCases) -> domain.HonourRules:
    """Show the rules in force (state defaults where the municipality set none)."""
    return await uc.rules(ags)


@router.put("/honour-rules", summary="Set the municipality's honour rules")
async def put_rules(ags: str, body: domain.HonourRules, _p: Staff, uc: HonourUseCases) -> domain.HonourRules:
    """Replace the municipality's rules over the state defaults."""
    return await uc.put_rules(ags, body)


@router.get("/honours", summary="List honours")
async def list_honours(
    ags: str,
    _p: Reader,
    uc: HonourUseCases,
    status: Literal["proposed", "granted", "rejected", "expired"] | None = None,
) -> list[dict[str, Any]]:
    """List honours, proposed ones first for staff to decide."""
    docs = await uc.repo.honours_of(ags, status=status)
    return [response_doc({k: v for k, v in d.items() if k != "verification_code"}) for d in docs]


class LocalAwardBody(BaseModel):
    """A local award staff propose for a member."""

    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)


@router.post("/honours", status_code=201, summary="Propose a local award")
async def propose_local_award(ags: str, body: LocalAwardBody, _p: Staff, uc: HonourUseCases) -> dict[str, Any]:
    """Propose a local award for a member."""
    return response_doc(await uc.propose_local_award(ags, body.member_id, body.title))


@router.post("/honours/{honour_id}/grant", summary="Grant a proposed honour")
async def grant(ags: str, honour_id: str, body: Grant, _p: Staff, uc: HonourUseCases) -> dict[str, Any]:
    """Grant an honour: card number, validity and a verification code checkable offline."""
    return response_doc(await uc.grant(ags, honour_id, body))


@router.post("/honours/{honour_id}/reject", summary="Reject a proposed honour")
async def reject(ags: str, honour_id: str, body: Reject, _p: Staff, uc: HonourUseCases) -> dict[str, Any]:
    """Reject an honour with a reason."""
    return response_doc(await uc.reject(ags, honour_id, body))

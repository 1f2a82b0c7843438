"""Serves the events service's figures: a municipality's own, and the network's in anonymised form (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from engagiert.events.api.deps import Service
from engagiert.shared.auth import Principal, Reader, require
from engagiert.shared.csvfiles import CsvDialect, csv_response
from engagiert.shared.figures import (
    CSV_DIALECT_QUERY,
    CSV_RESPONSE,
    PERIOD_QUERY,
    FormatQuery,
    network_csv,
    parse_period,
    wants_csv,
)

router = APIRouter(tags=["figures"])

NetworkMember = Annotated[Principal, Depends(require("reader"))]
"""A route parameter: any signed-in member of the network (staff or reader of any municipality, network-admin)."""


@router.get("/v1/municipalities/{ags}/figures", summary="A municipality's events figures for a year or quarter")
async def municipality_figures(
    ags: str, _p: Reader, service: Service, period: Annotated[str | None, PERIOD_QUERY] = None
) -> dict[str, Any]:
    parsed = parse_period(period, today=service.figures.clock().date())
    return await service.figures.of_municipality(ags, parsed)


@router.get(
    "/v1/network/figures",
    summary="Every municipality's events figures, anonymised (k=5), with the network's quartiles (JSON or CSV)",
    responses=CSV_RESPONSE,
)
async def network_figures(
    request: Request,
    _p: NetworkMember,
    service: Service,
    period: Annotated[str | None, PERIOD_QUERY] = None,
    format_: FormatQuery = None,
    dialect: Annotated[CsvDialect, CSV_DIALECT_QUERY] = "excel-de",
) -> Any:
    parsed = parse_period(period, today=service.figures.clock().date())
    answer = await service.figures.of_network(parsed)
    if wants_csv(request, format_):
        body = network_csv(answer, dialect=dialect)
        return csv_response(body, filename=f"network-figures-events-{parsed.label}.csv")
    return answer

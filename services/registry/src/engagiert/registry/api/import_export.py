"""Serves the member CSV: export and import (with a dry run)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile
from fastapi.responses import JSONResponse

from engagiert.registry.api.deps import Service, problems
from engagiert.shared.auth import Reader, Staff
from engagiert.shared.csvfiles import DIALECT_QUERY, CsvDialect, csv_response
from engagiert.shared.problems import Problem

MAX_IMPORT_BYTES = 20 * 1024 * 1024

router = APIRouter(prefix="/v1/municipalities/{ags}", tags=["members"])


@router.get(
    "/members.csv",
    summary="Export the members as CSV (formula cells neutralised; dialect=excel-de for German Excel)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_members(
    ags: str, _p: Reader, service: Service, dialect: Annotated[CsvDialect, DIALECT_QUERY] = "rfc4180"
) -> Response:
    async with problems():
        body = await service.import_export.export_csv(ags, dialect=dialect)
    return csv_response(body, filename=f"members-{ags}.csv")


@router.post("/members/import", summary="Import members from CSV (dry_run=true only validates)")
async def import_members(
    ags: str,
    _p: Staff,
    service: Service,
    file: Annotated[UploadFile, File(description="CSV with the columns of the export")],
    dry_run: bool = False,
) -> JSONResponse:
    content = await file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise Problem(413, "File too large", f"at most {MAX_IMPORT_BYTES} bytes")
    async with problems():
        report = await service.import_export.import_csv(ags, content, dry_run=dry_run)
    body = {
        "dry_run": report.dry_run,
        "rows": report.rows,
        "error_count": report.error_count,
        "created": report.created,
        "skipped_existing": report.skipped_existing,
        "errors": [asdict(e) for e in report.errors],
    }
    if report.errors and not dry_run:
        raise Problem(422, "Invalid file", f"{report.error_count} rows have errors; nothing was imported", extra=body)
    return JSONResponse(body)

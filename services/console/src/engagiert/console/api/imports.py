"""Page 3, import and export: upload a member CSV, see the dry run's row errors, import; export as CSV."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from engagiert.console import clients
from engagiert.console.deps import CurrentTenant, CurrentUser, Services, StaffUser
from engagiert.console.forms import FormErrors, errors_from
from engagiert.console.rendering import render

router = APIRouter(prefix="/m/{ags}", tags=["import-export"])

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""The registry's limit; a larger file is refused here already."""


@router.get("/import", summary="The import and export page")
async def import_page(request: Request, tenant: CurrentTenant, user: CurrentUser) -> Response:
    """Show the upload form and the export link."""
    return render(request, "imports/index.html", {"report": None, "errors": FormErrors()})


@router.post("/import", summary="Check or import a member CSV")
async def upload(request: Request, tenant: CurrentTenant, user: StaffUser, api: Services) -> Response:
    """Run the dry run (``action=check``) or the import (``action=import``) and show the report."""
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
    file = form.get("file")
    dry_run = form.get("action") != "import"
    errors = FormErrors()
    if not isinstance(file, UploadFile) or not file.filename:
        errors.add("file", "imports.no_file")
        return render(request, "imports/index.html", {"report": None, "errors": errors}, status=422)
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        errors.add("file", "errors.too_large")
        return render(request, "imports/index.html", {"report": None, "errors": errors}, status=413)
    try:
        report = await api.registry.import_csv(tenant.ags, content=content, filename=file.filename, dry_run=dry_run)
    except clients.ServiceError as exc:
        if isinstance(exc, clients.NotFound | clients.Forbidden):
            raise
        # An import of a file with row errors is refused whole; the answer carries the same report.
        if "rows" in exc.problem:
            report = clients.ImportReport.model_validate(exc.problem)
            return render(request, "imports/index.html", {"report": report, "errors": errors}, status=422)
        found = errors_from(exc, known={"file"})
        return render(request, "imports/index.html", {"report": None, "errors": found}, status=exc.status)
    return render(request, "imports/index.html", {"report": report, "errors": errors, "filename": file.filename})


@router.get("/export/members.csv", summary="Export the members as CSV")
async def export(tenant: CurrentTenant, user: CurrentUser, api: Services) -> Response:
    """Return the municipality's members as a CSV file (the import's columns)."""
    content = await api.registry.export_csv(tenant.ags)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="mitglieder-{tenant.ags}.csv"',
            "Cache-Control": "no-store",
        },
    )

"""One tenant's data as CSV, out and in: streamed exports and file imports
(:mod:`gcmc_jobs.services.exports`, :mod:`gcmc_jobs.services.imports`)."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gcmc_jobs.http import deps
from gcmc_jobs.http.schemas import PlatformId
from gcmc_jobs.services.exports import export_chunks
from gcmc_jobs.services.imports import import_csv, write_error_report

__all__ = ["router"]

router = APIRouter(tags=["imports and exports"])

TenantPath = Annotated[PlatformId, Path(description="The tenant's id.")]


@router.get(
    "/tenants/{tenant_id}/exports/{what}",
    summary="Export one tenant's clients, compliance scores or filings as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "no such tenant"}},
)
def get_export(
    request: Request, tenant_id: TenantPath, what: Literal["clients", "scores", "filings"]
) -> StreamingResponse:
    tenant = deps.platform_id(request, tenant_id, ("path", "tenant_id"))
    assert tenant is not None
    chunks = export_chunks(deps.engine(request), tenant_id=tenant, what=what)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{what}-{tenant}.csv"'},
    )


@router.post(
    "/tenants/{tenant_id}/imports/{what}",
    summary="Import a CSV file of clients, documents or filings into one tenant "
    "(all or nothing; idempotent on external_id)",
    responses={
        404: {"description": "no such tenant"},
        422: {
            "description": "invalid rows: nothing was imported; the problems as JSON, or as "
            "the CSV error report (row, column, error) when the request accepts text/csv",
            "content": {"application/json": {}, "text/csv": {}},
        },
    },
)
def post_import(
    request: Request,
    tenant_id: TenantPath,
    what: Literal["clients", "documents", "filings"],
    file: Annotated[UploadFile, File(description="The CSV file (UTF-8, a header first).")],
) -> Response:
    tenant = deps.platform_id(request, tenant_id, ("path", "tenant_id"))
    assert tenant is not None
    source = io.TextIOWrapper(file.file, encoding="utf-8-sig", newline="")
    try:
        result = import_csv(deps.engine(request), source, tenant_id=tenant, entity=what)
    except UnicodeDecodeError:
        return JSONResponse({"detail": "the file is not UTF-8 text"}, status_code=422)
    finally:
        source.detach()
    if result.errors:
        if "text/csv" in request.headers.get("accept", ""):
            report = io.StringIO()
            write_error_report(result.errors, report)
            return Response(
                report.getvalue(),
                status_code=422,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{what}-errors.csv"'},
            )
        return JSONResponse(
            {
                "detail": f"{len(result.errors)} problem(s): nothing was imported",
                "errors": [
                    {"row": e.row, "column": e.column, "error": e.error} for e in result.errors
                ],
            },
            status_code=422,
        )
    return JSONResponse(
        {
            "what": what,
            "rows": result.rows,
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged": result.unchanged,
        }
    )

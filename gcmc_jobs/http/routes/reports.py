"""Monthly compliance reports: list them, request one, download its files
(:mod:`gcmc_jobs.ops.reports`, :mod:`gcmc_jobs.services.reports`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.deps import Limit
from gcmc_jobs.http.schemas import PlatformId
from gcmc_jobs.ops.reports import request_report
from gcmc_jobs.services.reports import files_of, list_reports

__all__ = ["router"]

router = APIRouter(tags=["reports"])


@router.get("/reports", summary="Monthly compliance reports, newest month first")
def reports(
    request: Request,
    limit: Limit = 100,
    tenant_id: Annotated[
        PlatformId | None, Query(description="Only this tenant (an integer or a text id).")
    ] = None,
) -> list[schemas.ReportBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    with Session(deps.engine(request)) as session:
        found = list_reports(session, tenant_id=tenant, limit=limit)
    return [schemas.ReportBody.model_validate(r.as_dict()) for r in found]


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Make a tenant's monthly report: aggregate, render, email, record (one job each)",
    responses={
        404: {"description": "no such tenant"},
        409: {"description": "the report is completed (force=true makes it again)"},
        422: {"description": "a month that has not begun in the tenant's timezone"},
    },
)
def request(request: Request, body: schemas.ReportRequest) -> schemas.ReportRequestBody:
    tenant = deps.platform_id(request, body.tenant_id, ("body", "tenant_id"))
    assert tenant is not None
    result = request_report(deps.runtime(request), tenant, body.period, force=body.force)
    if result.status == "already_completed":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the report of tenant {tenant} for {result.period} is completed; send "
            "force=true to make and mail it again",
        )
    return schemas.ReportRequestBody.model_validate(result.as_dict())


@router.get(
    "/reports/{report_id}/files/{name}",
    summary="Download one file of a report (its PDF or CSV)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}, "text/csv": {}}},
        404: {"description": "no such report or file"},
    },
)
def download(
    request: Request,
    report_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    name: Annotated[str, Path(max_length=200)],
) -> Response:
    with Session(deps.engine(request)) as session:
        found = {f.name: f for f in files_of(session, report_id)}
    file = found.get(name)
    if file is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"report {report_id} has no file {name!r}")
    return Response(
        file.content,
        media_type=file.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.name}"',
            "X-Checksum-SHA256": file.sha256,
        },
    )

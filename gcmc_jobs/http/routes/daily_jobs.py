"""Daily jobs: the run ledger, the next runs, and triggering a run, all through the ledger
read model (:mod:`gcmc_jobs.scheduling.ledger_view`, :mod:`~gcmc_jobs.scheduling.run_messages`),
so they say what the scheduler does, DST days included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from sqlalchemy.orm import Session

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.errors import UnknownJob
from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.deps import NAME, Limit, Name
from gcmc_jobs.http.schemas import PlatformId
from gcmc_jobs.scheduling.jobs import check_job, schedule_spread
from gcmc_jobs.scheduling.jobs import job_times as all_job_times
from gcmc_jobs.scheduling.ledger_view import list_runs, next_runs
from gcmc_jobs.scheduling.run_messages import trigger_runs

__all__ = ["router"]

router = APIRouter(tags=["daily jobs"])

#: Tenants listed by ``/api/schedules`` at most (each with one row per job).
MAX_SCHEDULED_TENANTS = 1000


@router.get("/runs", summary="The daily-job ledger, newest first")
def runs(
    request: Request,
    limit: Limit = 100,
    offset: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Skip this many rows first (paging).")
    ] = 0,
    job: Name = None,
    tenant_id: Annotated[
        PlatformId | None, Query(description="Only this tenant (an integer or a text id).")
    ] = None,
    since: Annotated[
        date | None, Query(description="Only runs for this local date or later.")
    ] = None,
) -> list[schemas.JobRunBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    with Session(deps.engine(request)) as session:
        found = list_runs(
            session, job=job, tenant_id=tenant, since=since, limit=limit, offset=offset
        )
    return [schemas.JobRunBody.model_validate(run.as_dict()) for run in found]


@router.get(
    "/schedules",
    summary="Each daily job's next run per active tenant",
    responses={404: {"description": "no such tenant"}},
)
def schedules(
    request: Request,
    tenant_id: Annotated[
        PlatformId | None, Query(description="Only this tenant (active or not).")
    ] = None,
) -> list[schemas.ScheduleBody]:
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    current = deps.settings(request)
    job_times = all_job_times(current)
    with Session(deps.engine(request)) as session:
        found = next_runs(
            session,
            job_times,
            now=datetime.now(UTC),
            tenant_id=tenant,
            limit=MAX_SCHEDULED_TENANTS,
            spread=schedule_spread(current),
        )
    if not found:  # no tenant yet: still say when each job runs
        return [
            schemas.ScheduleBody(job=job, local_time=at.strftime("%H:%M"))
            for job, at in job_times.items()
        ]
    return [schemas.ScheduleBody.model_validate(row.as_dict()) for row in found]


@router.post(
    "/jobs/{job}/run",
    summary="Enqueue one daily job for one tenant (the ledger still runs it once a day)",
    responses={
        404: {"description": "unknown job or tenant"},
        422: {
            "description": "the tenant's timezone is not an IANA name (say local_date to "
            "run it anyway)"
        },
        409: {
            "description": "a message for this run is pending or recently succeeded (its "
            "dedup key is taken); force=true runs it again"
        },
    },
)
def trigger(
    request: Request, job: Annotated[str, Path(pattern=NAME)], body: schemas.TriggerRequest
) -> schemas.TriggerBody:
    try:
        check_job(job)
    except UnknownJob as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    tenant = deps.platform_id(request, body.tenant_id, ("body", "tenant_id"))
    assert tenant is not None
    runtime = deps.runtime(request)
    with Session(runtime.engine) as session:
        result = trigger_runs(
            session,
            runtime.broker,
            run_daily_job.message_with_options,
            job,
            [tenant],
            now=datetime.now(UTC),
            local_date=body.local_date,
            force=body.force,
        )
    if result.problems:  # its timezone is unusable: its local date cannot be known
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, f"not enqueued: {result.problems[0]}"
        )
    [run] = result.runs
    if run.message_id is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"not enqueued: dedup key {run.dedup_key!r} is taken (a message for this run is "
            "pending or recently succeeded); send force=true to run it again",
        )
    return schemas.TriggerBody(
        job=job,
        tenant_id=run.tenant_id,
        local_date=run.local_date,
        force=run.force,
        dedup_key=run.dedup_key,
        message_id=run.message_id,
    )

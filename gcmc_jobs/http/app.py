"""The ASGI application: :func:`create_app` builds it for one :class:`~gcmc_jobs.Settings`.

=====================================  ======  ===============================================
 path                                   auth    what
=====================================  ======  ===============================================
 ``GET  /health/live``                  open    the process answers (always 200)
 ``GET  /health/ready``                 open    broker, Redis and database reachable (200/503)
 ``GET  /metrics``                      token   Prometheus text format
 ``GET  /api/health``                   token   the full health report (``gcmc-jobs health``)
 ``GET  /api/queues``                   token   per-queue statistics
 ``POST /api/queues/{queue}/pause``     token   pause a queue on every worker
 ``POST /api/queues/{queue}/resume``    token   resume it
 ``GET  /api/dead-letters``             token   dead letters, newest first (filters)
 ``GET  /api/dead-letters/{id}``        token   one dead letter, secrets masked
 ``POST /api/dead-letters/{id}/replay`` token   re-send its call with fresh retries
 ``POST /api/dead-letters/purge``       token   delete dead letters older than a duration
 ``GET  /api/runs``                     token   the daily-job ledger (``job_runs``)
 ``GET  /api/schedules``                token   each daily job's next run per tenant
 ``POST /api/jobs/{job}/run``           token   enqueue one daily job for one tenant
 ``GET  /dashboard``                    open*   the dashboard page (*its data calls the API)
 ``GET  /openapi.json``, ``/docs``      open    the OpenAPI document and its viewer
=====================================  ======  ===============================================
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pika.exceptions import AMQPError
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gcmc_jobs.errors import ConfigurationError, GcmcJobsError, NotConfiguredError
from gcmc_jobs.http import dashboard, schemas
from gcmc_jobs.http.auth import require_token
from gcmc_jobs.http.metrics import QueueCollector, render_metrics
from gcmc_jobs.runtime import Runtime, configure, current
from gcmc_jobs.settings import DEFAULT_JOB_TIMES, Settings

__all__ = ["create_app"]

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")]
#: Queue, actor, job and error-type names: identifiers, so no NUL or control character
#: ever reaches the database.
NAME = r"^[A-Za-z0-9_.:-]{1,200}$"
Name = Annotated[str | None, Query(pattern=NAME)]
QueueName = Annotated[str, Path(pattern=NAME, description="A queue name.")]


def _runtime(request: Request) -> Runtime:
    """The process's configured runtime; configured from the app's settings if not yet."""
    try:
        return current()
    except NotConfiguredError:
        return configure(request.app.state.settings)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request) -> Engine:
    return _runtime(request).engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """The admin application for ``settings`` (default: read from ``GCMC_JOBS_*``).

    Broker and database come from :func:`gcmc_jobs.current` (the host's
    :func:`gcmc_jobs.configure`), configured from ``settings`` on the first request that
    needs them if the host did not. Nothing connects at creation.
    """
    settings = settings if settings is not None else Settings()
    app = FastAPI(
        title="gcmc-jobs admin API",
        version="1",
        description="Queues, pauses, dead letters, daily-job runs and schedules of gcmc-jobs. "
        "Every /api and /metrics call needs `Authorization: Bearer <GCMC_JOBS_ADMIN_TOKEN>`.",
    )
    app.state.settings = settings
    app.state.queue_registry = CollectorRegistry(auto_describe=True)
    app.state.queue_registry.register(QueueCollector(settings))

    @app.exception_handler(GcmcJobsError)
    async def _gcmc_error(request: Request, exc: GcmcJobsError) -> JSONResponse:
        if isinstance(exc, LookupError):
            code = status.HTTP_404_NOT_FOUND
        elif isinstance(exc, ConfigurationError):
            code = status.HTTP_503_SERVICE_UNAVAILABLE
        else:
            code = status.HTTP_422_UNPROCESSABLE_CONTENT
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(RedisError)
    @app.exception_handler(AMQPError)
    @app.exception_handler(OperationalError)
    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        # A broker, Redis or database outage is the service being unavailable, not a bug.
        return JSONResponse(
            {"detail": f"a backing service is unreachable: {type(exc).__name__}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    app.include_router(_probes())
    app.include_router(_api(), dependencies=[Depends(require_token)])
    app.include_router(dashboard.router)
    return app


def _probes() -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/health/live", summary="Liveness: the process answers")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/health/ready",
        summary="Readiness: broker, Redis and database reachable",
        responses={503: {"description": "a dependency is unreachable"}},
    )
    def ready(request: Request) -> JSONResponse:
        from gcmc_jobs.ops.health import READINESS_CHECKS, check_health

        report = check_health(_settings(request), engine=_engine(request), checks=READINESS_CHECKS)
        body = {name: r.status for name, r in report.checks.items()}
        return JSONResponse(
            {"status": report.status, "checks": body},
            status_code=200 if report.healthy else 503,
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        dependencies=[Depends(require_token)],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(
            render_metrics(request.app.state.queue_registry), media_type=CONTENT_TYPE_LATEST
        )

    return router


def _api() -> APIRouter:
    router = APIRouter(prefix="/api", responses={401: {}, 403: {}, 503: {}})

    @router.get("/health", tags=["health"], summary="The full health report")
    def health(request: Request) -> schemas.HealthBody:
        from gcmc_jobs.ops.health import check_health

        report = check_health(_settings(request), engine=_engine(request))
        return schemas.HealthBody.model_validate(report.as_dict())

    # -- queues ---------------------------------------------------------------------------

    @router.get("/queues", tags=["queues"], summary="Per-queue statistics")
    def queues(request: Request) -> list[schemas.QueueBody]:
        from gcmc_jobs.ops.queues import queue_stats

        settings = _settings(request)
        broker = _runtime(request).broker if _is_stub(settings) else None
        stats = queue_stats(settings, broker=broker, timeout_ms=settings.health_timeout_ms)
        return [schemas.QueueBody.model_validate(s.as_dict()) for s in stats]

    @router.post(
        "/queues/{queue}/pause",
        tags=["queues"],
        summary="Pause a queue on every worker",
        responses={404: {"description": "unknown queue"}},
    )
    def pause(request: Request, queue: QueueName) -> schemas.PauseBody:
        from gcmc_jobs.ops.pauses import pause_queue

        changed = pause_queue(_settings(request), queue)
        return schemas.PauseBody(queue=queue, paused=True, changed=changed)

    @router.post(
        "/queues/{queue}/resume",
        tags=["queues"],
        summary="Resume a paused queue",
        responses={404: {"description": "unknown queue"}},
    )
    def resume(request: Request, queue: QueueName) -> schemas.PauseBody:
        from gcmc_jobs.ops.pauses import resume_queue

        changed = resume_queue(_settings(request), queue)
        return schemas.PauseBody(queue=queue, paused=False, changed=changed)

    # -- dead letters ---------------------------------------------------------------------

    @router.get("/dead-letters", tags=["dead letters"], summary="Dead letters, newest first")
    def dead_letters(
        request: Request,
        limit: Limit = 100,
        queue: Name = None,
        actor: Name = None,
        error: Annotated[
            str | None, Query(pattern=NAME, description="Error type, e.g. SMTPDataError.")
        ] = None,
        replayed: Annotated[bool | None, Query(description="Only (not) replayed ones.")] = None,
    ) -> list[schemas.DeadLetterSummary]:
        from gcmc_jobs.redaction import redact
        from gcmc_jobs.services.dead_letters import list_dead_letters

        records = list_dead_letters(
            _dead_letter_store(request),
            actor=actor,
            queue=queue,
            error=error,
            replayed=replayed,
            limit=limit,
        )
        return [
            schemas.DeadLetterSummary.model_validate({**r.as_dict(), "error": redact(r.error)})
            for r in records
        ]

    @router.get(
        "/dead-letters/{id}",
        tags=["dead letters"],
        summary="One dead letter, secrets masked",
        responses={404: {"description": "no such dead letter"}},
    )
    def dead_letter(request: Request, id: int) -> schemas.DeadLetterDetail:
        from gcmc_jobs.services.dead_letters import show_dead_letter

        return schemas.DeadLetterDetail.model_validate(
            show_dead_letter(_dead_letter_store(request), _db_int(id))
        )

    @router.post(
        "/dead-letters/{id}/replay",
        tags=["dead letters"],
        summary="Re-send the dead letter's call with fresh retries",
        responses={
            404: {"description": "no such dead letter"},
            409: {"description": "already replayed, duplicate, or unknown actor"},
        },
    )
    def replay(request: Request, id: int) -> schemas.ReplayBody:
        from gcmc_jobs.services.dead_letters import replay_dead_letters

        [result] = replay_dead_letters(
            _dead_letter_store(request), _runtime(request).broker, ids=[_db_int(id)]
        )
        if result.status != "replayed" or result.replayed_as is None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"not replayed: {result.status}")
        return schemas.ReplayBody(id=id, replayed_as=result.replayed_as)

    @router.post(
        "/dead-letters/purge",
        tags=["dead letters"],
        summary="Delete dead letters that failed more than older_than_ms ago",
    )
    def purge(
        request: Request,
        older_than_ms: Annotated[int, Query(ge=0, le=10 * 365 * 86_400_000)] = 0,
        queue: Name = None,
        actor: Name = None,
    ) -> schemas.PurgeBody:
        from gcmc_jobs.services.dead_letters import purge_dead_letters

        purged = purge_dead_letters(
            _dead_letter_store(request),
            older_than=timedelta(milliseconds=older_than_ms),
            queue=queue,
            actor=actor,
        )
        return schemas.PurgeBody(purged=purged)

    # -- daily jobs -----------------------------------------------------------------------

    @router.get("/runs", tags=["daily jobs"], summary="The daily-job ledger, newest first")
    def runs(
        request: Request,
        limit: Limit = 100,
        job: Name = None,
        tenant_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        since: Annotated[
            date | None, Query(description="Only runs for this local date or later.")
        ] = None,
    ) -> list[schemas.JobRunBody]:
        from gcmc_jobs.db.models import JobRun

        query = select(JobRun).order_by(JobRun.local_date.desc(), JobRun.id.desc()).limit(limit)
        if job is not None:
            query = query.where(JobRun.job == job)
        if tenant_id is not None:
            query = query.where(JobRun.tenant_id == tenant_id)
        if since is not None:
            query = query.where(JobRun.local_date >= since)
        with Session(_engine(request)) as session:
            rows = session.scalars(query).all()
            return [
                schemas.JobRunBody.model_validate(
                    {c.key: getattr(r, c.key) for c in JobRun.__table__.columns}
                )
                for r in rows
            ]

    @router.get(
        "/schedules", tags=["daily jobs"], summary="Each daily job's next run per active tenant"
    )
    def schedules(request: Request) -> list[schemas.ScheduleBody]:
        from gcmc_jobs.db.models import Tenant

        now = datetime.now(UTC)
        with _engine(request).connect() as connection:
            tenants = connection.execute(
                select(Tenant.id, Tenant.timezone)
                .where(Tenant.is_active.is_(True))
                .order_by(Tenant.id)
                .limit(1000)
            ).all()
        rows = []
        for job, at in _settings(request).job_times.items():
            if not tenants:
                rows.append(schemas.ScheduleBody(job=job, local_time=at.strftime("%H:%M")))
            for tenant_id, timezone in tenants:
                zone = ZoneInfo(timezone)
                local_now = now.astimezone(zone)
                candidate = datetime.combine(local_now.date(), at, tzinfo=zone)
                if candidate <= local_now:
                    candidate = datetime.combine(
                        local_now.date() + timedelta(days=1), at, tzinfo=zone
                    )
                rows.append(
                    schemas.ScheduleBody(
                        job=job,
                        local_time=at.strftime("%H:%M"),
                        tenant_id=tenant_id,
                        timezone=timezone,
                        next_run_local=candidate,
                        next_run_utc=candidate.astimezone(UTC),
                    )
                )
        return rows

    @router.post(
        "/jobs/{job}/run",
        tags=["daily jobs"],
        summary="Enqueue one daily job for one tenant (the ledger still runs it once a day)",
        responses={404: {"description": "unknown job or tenant"}},
    )
    def trigger(
        request: Request, job: Annotated[str, Path(pattern=NAME)], body: schemas.TriggerRequest
    ) -> schemas.TriggerBody:
        from gcmc_jobs.db.models import Tenant

        if job not in DEFAULT_JOB_TIMES:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"unknown job {job!r}; known: {', '.join(DEFAULT_JOB_TIMES)}",
            )
        runtime = _runtime(request)
        with runtime.engine.connect() as connection:
            timezone = connection.execute(
                select(Tenant.timezone).where(Tenant.id == body.tenant_id)
            ).scalar_one_or_none()
        if timezone is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant {body.tenant_id}")
        local_date = body.local_date or datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()
        actor = runtime.broker.get_actor("run_daily_job")
        message = actor.send(job, body.tenant_id, local_date.isoformat())
        return schemas.TriggerBody(job=job, tenant_id=body.tenant_id, message_id=message.message_id)

    return router


class UnknownId(GcmcJobsError, LookupError):
    """An id outside any stored range (answered 404, never sent to the database)."""


def _is_stub(settings: Settings) -> bool:
    return settings.broker_url.get_secret_value().startswith("stub://")


def _db_int(value: int) -> int:
    """Reject ids no database integer column can hold (a clean 404, not a driver error)."""
    if not 1 <= value <= 2**63 - 1:
        raise UnknownId(f"no row with id {value}")
    return value


def _dead_letter_store(request: Request) -> Any:
    from gcmc_jobs.middleware.stores.dead_letters import SqlDeadLetterStore

    return SqlDeadLetterStore(_engine(request))

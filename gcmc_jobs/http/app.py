"""The ASGI application: :func:`create_app` builds it for one :class:`~gcmc_jobs.Settings`.

=====================================  ======  ===============================================
 path                                   auth    what
=====================================  ======  ===============================================
 ``GET  /health/live``                  open    the process answers (always 200)
 ``GET  /health/ready``                 open    broker, Redis and database reachable (200/503)
 ``GET  /metrics``                      token   Prometheus text format (the message counters
                                                live in the workers' exporters, listed here)
 ``GET  /api/health``                   token   the full health report (``gcmc-jobs health``)
 ``GET  /api/queues``                   token   per-queue statistics
 ``POST /api/queues/{queue}/pause``     token   pause a queue on every worker
 ``POST /api/queues/{queue}/resume``    token   resume it
 ``GET  /api/dead-letters``             token   dead letters, newest first (filters)
 ``GET  /api/dead-letters/{id}``        token   one dead letter, secrets masked
 ``POST /api/dead-letters/{id}/replay`` token   re-send its call with fresh retries
 ``POST /api/dead-letters/purge``       token   delete dead letters older than a duration
 ``GET  /api/runs``                     token   the daily-job ledger (``job_runs``), paged
 ``GET  /api/schedules``                token   each daily job's next run per tenant
 ``POST /api/jobs/{job}/run``           token   enqueue one daily job for one tenant (force)
 ``GET  /api/messages/{message_id}``    token   a message's status (``gcmc_jobs.status``)
 ``GET  /api/activity``                 token   processed, failed, queue depth per minute (24 h)
 ``GET  /api/overview``                 token   clients by risk per tenant; email by kind, status
 ``GET  /api/suppressions``             token   suppressed addresses (search, reason)
 ``POST /api/suppressions``             token   suppress an address (actor ``api``)
 ``DELETE /api/suppressions/{address}`` token   lift a suppression
 ``POST /api/suppressions/import``      token   suppress a CSV's addresses
 ``GET  /api/suppressions/changes``     token   who changed the list, when
 ``POST /hooks/email/{provider}``       signed  SES (SNS), Postmark, SendGrid, Mailgun events
 ``GET  /dashboard``                    open*   the dashboard page (*its data calls the API)
 ``GET  /openapi.json``, ``/docs``      open    the OpenAPI document and its viewer
=====================================  ======  ===============================================

The routes live in :mod:`gcmc_jobs.http.routes`, one module per resource.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse
from pika.exceptions import AMQPError
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from gcmc_jobs.errors import ConfigurationError, GcmcJobsError, UnsupportedByBroker
from gcmc_jobs.http import dashboard
from gcmc_jobs.http.auth import require_token
from gcmc_jobs.http.metrics import MailCircuitCollector, QueueCollector, WorkerCollector
from gcmc_jobs.http.provider_signatures import https_get
from gcmc_jobs.http.routes import (
    campaigns,
    daily_jobs,
    dead_letters,
    email_hooks,
    health,
    messages,
    metrics,
    overview,
    queues,
    reports,
    sms,
    suppressions,
    transfer,
    unsubscribe,
    webhooks,
)
from gcmc_jobs.http.routes import mail_circuit as mail_circuit_routes
from gcmc_jobs.settings import Settings

__all__ = ["create_app"]


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
        description="Queues, pauses, dead letters, daily-job runs, schedules, message "
        "statuses and monthly compliance reports of gcmc-jobs. "
        "Every /api and /metrics call needs `Authorization: Bearer <GCMC_JOBS_ADMIN_TOKEN>`.",
    )
    app.state.settings = settings
    app.state.queue_registry = CollectorRegistry(auto_describe=True)
    app.state.queue_registry.register(QueueCollector(settings))
    app.state.queue_registry.register(WorkerCollector(settings))
    app.state.queue_registry.register(MailCircuitCollector(settings))
    app.add_exception_handler(GcmcJobsError, _gcmc_error)  # type: ignore[arg-type]
    for unreachable in (RedisError, AMQPError, OperationalError):
        app.add_exception_handler(unreachable, _unreachable)

    api = APIRouter(prefix="/api", responses={401: {}, 403: {}, 503: {}})
    for resource in (
        health,
        queues,
        dead_letters,
        daily_jobs,
        messages,
        sms,
        suppressions,
        transfer,
        reports,
        webhooks,
        campaigns,
    ):
        api.include_router(resource.router)
    api.include_router(mail_circuit_routes.router)
    api.include_router(overview.router)
    app.include_router(health.probes)
    app.include_router(metrics.router)
    app.include_router(api, dependencies=[Depends(require_token)])
    app.include_router(dashboard.router)
    # Providers call the email webhooks: their signatures, not the admin token, guard them.
    app.include_router(email_hooks.router)
    #: How the SES webhook fetches SNS signing certificates and SubscribeURLs (https).
    app.state.https_get = https_get
    app.include_router(unsubscribe.router)  # public: the signed token is the authorisation
    return app


async def _gcmc_error(request: Request, exc: GcmcJobsError) -> JSONResponse:
    """Our errors: unknown things are 404, configuration 503, what the broker cannot do 501,
    anything else 422."""
    if isinstance(exc, LookupError):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, UnsupportedByBroker):
        code = status.HTTP_501_NOT_IMPLEMENTED
    elif isinstance(exc, ConfigurationError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    else:
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
    """A broker, Redis or database outage is the service being unavailable, not a bug."""
    return JSONResponse(
        {"detail": f"a backing service is unreachable: {type(exc).__name__}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )

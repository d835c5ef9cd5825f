"""Health: the open liveness and readiness probes, and the full report behind the token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.ops.health import ALL_CHECKS, READINESS_CHECKS, check_health

__all__ = ["probes", "router"]

#: ``/health/live`` and ``/health/ready``: open, for orchestrators.
probes = APIRouter(tags=["probes"])
#: ``/health`` under the token-protected ``/api``.
router = APIRouter(tags=["health"])


@probes.get("/health/live", summary="Liveness: the process answers")
def live() -> dict[str, str]:
    return {"status": "ok"}


@probes.get(
    "/health/ready",
    summary="Readiness: broker, Redis and database reachable",
    responses={503: {"description": "a dependency is unreachable"}},
)
def ready(request: Request) -> JSONResponse:
    report = check_health(
        deps.settings(request), engine=deps.engine(request), checks=READINESS_CHECKS
    )
    body = {name: r.status for name, r in report.checks.items()}
    return JSONResponse(
        {"status": report.status, "checks": body},
        status_code=200 if report.healthy else 503,
    )


@router.get(
    "/health",
    summary="The full health report, or the checks named",
    responses={422: {"description": "an unknown check name"}},
)
def health(
    request: Request,
    check: Annotated[
        list[str] | None,
        Query(description="Run only these checks (workers, redis, ...); all by default."),
    ] = None,
) -> schemas.HealthBody:
    unknown = sorted(set(check or ()) - set(ALL_CHECKS))
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown check(s) {unknown}; known: {', '.join(ALL_CHECKS)}",
        )
    report = check_health(deps.settings(request), engine=deps.engine(request), checks=check or None)
    return schemas.HealthBody.model_validate(report.as_dict())

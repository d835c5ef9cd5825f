"""The dashboard's charts: the workers' activity per minute (Redis) and the database's
summaries (risk per tenant, email delivery)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from gcmc_jobs.http import deps, schemas
from gcmc_jobs.http.schemas import PlatformId
from gcmc_jobs.ops.activity import MAX_MINUTES, activity
from gcmc_jobs.services.overview import email_delivery, risk_distribution, risk_trend

#: Days of compliance snapshots the overview's trend covers.
TREND_DAYS = 90

__all__ = ["router"]

router = APIRouter(tags=["overview"])


@router.get("/activity", summary="Messages processed and failed, and queue depths, per minute")
def activity_per_minute(
    request: Request,
    minutes: Annotated[
        int, Query(ge=1, le=MAX_MINUTES, description="This many minutes up to now (24 h).")
    ] = MAX_MINUTES,
) -> schemas.ActivityBody:
    found = activity(deps.settings(request), datetime.now(UTC), minutes=minutes)
    return schemas.ActivityBody(
        minutes=found.minutes, processed=found.processed, failed=found.failed, depth=found.depth
    )


@router.get(
    "/overview", summary="Each tenant's clients by risk level, its 90-day trend; email delivery"
)
def overview(
    request: Request,
    hours: Annotated[
        int, Query(ge=1, le=24 * 90, description="Email delivery over this many hours.")
    ] = 24,
    tenant_id: Annotated[
        PlatformId | None,
        Query(description="The trend of this tenant's clients (default: every tenant's)."),
    ] = None,
) -> schemas.OverviewBody:
    since = datetime.now(UTC) - timedelta(hours=hours)
    tenant = deps.platform_id(request, tenant_id, ("query", "tenant_id"))
    with deps.engine(request).connect() as connection:
        risk = risk_distribution(connection)
        trend = risk_trend(
            connection,
            since=(datetime.now(UTC) - timedelta(days=TREND_DAYS)).date(),
            tenant_id=tenant,
        )
        email = email_delivery(connection, since=since)
    return schemas.OverviewBody(
        risk=[schemas.TenantRiskBody(tenant_id=r.id, tenant=r.name, levels=r.levels) for r in risk],
        trend=[
            schemas.RiskDayBody(day=d.day, low=d.low, medium=d.medium, high=d.high) for d in trend
        ],
        email_since=since,
        email=[schemas.DeliveryBody(kind=d.kind, status=d.status, count=d.count) for d in email],
    )

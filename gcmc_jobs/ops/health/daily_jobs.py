"""The ``daily_jobs`` health check: an active tenant's daily job missing past its time.

It reads the ledger through :func:`gcmc_jobs.scheduling.ledger_view.job_statuses`, so a
run's due instant is the scheduler's (DST-correct), and ``health_job_grace_ms`` after it
the run must have succeeded. A run counts only once it was possible: a tenant the
scheduler has not seen yet, or a day before it first saw it (a fresh deployment, a new
tenant), is never overdue (:func:`~gcmc_jobs.scheduling.ledger_view.run_was_possible`), so
the check can serve as a readiness probe on day one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.scheduling.jobs import job_times, schedule_spread
from gcmc_jobs.scheduling.ledger_view import job_statuses
from gcmc_jobs.settings import Settings

__all__ = ["check_daily_jobs"]


def check_daily_jobs(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy when an active tenant's job has not succeeded for its latest due local date
    ``health_job_grace_ms`` after its time in ``settings.job_times`` (or never can: an
    unknown timezone); lists each job's status per tenant. Three statements."""
    assert engine is not None
    grace = timedelta(milliseconds=settings.health_job_grace_ms)
    times = job_times(settings)  # the host's registered jobs too
    with Session(engine) as session:
        statuses = job_statuses(
            session, times, now=now, grace=grace, spread=schedule_spread(settings)
        )
    jobs: dict[str, list[dict[str, Any]]] = {job: [] for job in times}
    for status in statuses:
        jobs[status.job].append(status.as_dict())
    overdue = sum(status.overdue for status in statuses)
    # A tenant with an unusable timezone is named once (id and name), not per job; the
    # other tenants' statuses are listed as usual.
    skipped = {
        status.tenant_id: f"tenant {status.tenant_id} ({status.tenant_name}): {status.problem}"
        for status in statuses
        if status.problem is not None
    }
    if overdue:
        detail = f"{overdue} daily run(s) overdue"
        if skipped:
            detail += "; not scheduled: " + "; ".join(skipped.values())
        return CheckResult("unhealthy", detail, {"jobs": jobs})
    tenants = len({status.tenant_id for status in statuses})
    detail = f"every daily job is up to date for {tenants} tenant(s)"
    unseen = len({s.tenant_id for s in statuses if s.scheduled_since is None})
    if unseen:
        detail += f" ({unseen} not seen by the scheduler's tick yet)"
    return CheckResult("ok", detail, {"jobs": jobs})

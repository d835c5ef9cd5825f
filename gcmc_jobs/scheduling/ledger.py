"""The run ledger: ``job_runs`` rows that record, and guard, each daily run.

The unique ``(job, tenant_id, local_date)`` row is what makes a daily job run once per
tenant per local day, whatever happens upstream (two schedulers, a restart, a redelivered
message, a DST change). A run is *claimed* before any work:

- no row yet: ``INSERT … ON CONFLICT DO NOTHING`` creates it as ``running``;
- a ``failed`` row, or a ``running`` row older than ``stale_after`` (its worker died): an
  ``UPDATE … WHERE status = …`` takes it over, so the next attempt retries it;
- a ``succeeded`` row: done, unless ``force`` re-runs it;
- a fresh ``running`` row: someone else is on it; never two at once, even forced.

Each claim is a compare-and-set in the database, so two racing workers cannot both win.
The claim must be committed before the work starts (other workers must see it); the work
and :func:`succeed` share one transaction, so a run is ``succeeded`` exactly when its work
is committed.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from gcmc_jobs.db.dialect import insert_for
from gcmc_jobs.db.enums import JobRunStatus
from gcmc_jobs.db.tables import Id, tables_of

__all__ = ["DEFAULT_STALE_AFTER", "Claim", "claim", "fail", "succeed"]

#: A ``running`` row older than this is taken to belong to a dead worker (the per-tenant
#: actor's own time limit is shorter).
DEFAULT_STALE_AFTER = timedelta(minutes=15)


class Claim(enum.StrEnum):
    """The outcome of :func:`claim`."""

    CLAIMED = "claimed"
    ALREADY_DONE = "already_done"
    RUNNING_ELSEWHERE = "running_elsewhere"


def _key(jr: Any, job: str, tenant_id: Id, local_date: date) -> Any:
    return and_(jr.job == job, jr.tenant_id == tenant_id, jr.local_date == local_date)


def claim(
    session: Session,
    job: str,
    tenant_id: Id,
    local_date: date,
    *,
    now: datetime,
    scheduled_for: datetime | None = None,
    force: bool = False,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Claim:
    """Claim the run of ``job`` for ``tenant_id`` on ``local_date``. At most 3 statements."""
    job_runs = tables_of(session).job_runs
    jr = job_runs.c
    inserted: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        insert_for(session)(job_runs)
        .values(
            job=job,
            tenant_id=tenant_id,
            local_date=local_date,
            scheduled_for=scheduled_for,
            started_at=now,
            status=JobRunStatus.RUNNING,
            stats={},
        )
        .on_conflict_do_nothing(index_elements=["job", "tenant_id", "local_date"]),
        execution_options={"preserve_rowcount": True},
    )
    if inserted.rowcount == 1:
        return Claim.CLAIMED
    takeable = [
        jr.status == JobRunStatus.FAILED,
        and_(jr.status == JobRunStatus.RUNNING, jr.started_at < now - stale_after),
    ]
    if force:
        takeable.append(jr.status == JobRunStatus.SUCCEEDED)
    taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(job_runs)
        .where(_key(jr, job, tenant_id, local_date), or_(*takeable))
        .values(
            status=JobRunStatus.RUNNING,
            started_at=now,
            finished_at=None,
            error=None,
            **({"scheduled_for": scheduled_for} if scheduled_for is not None else {}),
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:
        return Claim.CLAIMED
    status = session.scalar(select(jr.status).where(_key(jr, job, tenant_id, local_date)))
    return Claim.ALREADY_DONE if status == JobRunStatus.SUCCEEDED else Claim.RUNNING_ELSEWHERE


def _finish(
    session: Session,
    job: str,
    tenant_id: Id,
    local_date: date,
    *,
    status: JobRunStatus,
    now: datetime,
    stats: dict[str, Any] | None,
    error: str | None,
) -> None:
    job_runs = tables_of(session).job_runs
    jr = job_runs.c
    values: dict[str, Any] = {"status": status, "finished_at": now, "error": error}
    if stats is not None:
        values["stats"] = stats
    session.execute(
        update(job_runs)
        .where(_key(jr, job, tenant_id, local_date), jr.status == JobRunStatus.RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def succeed(
    session: Session,
    job: str,
    tenant_id: Id,
    local_date: date,
    *,
    now: datetime,
    stats: dict[str, Any],
) -> None:
    """Mark the claimed run ``succeeded`` with its ``stats`` (in the work's transaction)."""
    _finish(
        session,
        job,
        tenant_id,
        local_date,
        status=JobRunStatus.SUCCEEDED,
        now=now,
        stats=stats,
        error=None,
    )


def fail(
    session: Session,
    job: str,
    tenant_id: Id,
    local_date: date,
    *,
    now: datetime,
    error: str,
    stats: dict[str, Any] | None = None,
) -> None:
    """Mark the claimed run ``failed``; the next attempt (a retry, the next tick, a manual
    run) may claim it again."""
    _finish(
        session,
        job,
        tenant_id,
        local_date,
        status=JobRunStatus.FAILED,
        now=now,
        stats=stats,
        error=error[:4000],
    )

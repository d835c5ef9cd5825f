"""Run one daily job for one tenant under the ledger: claim, work, record.

:func:`run_for_tenant` is what the per-tenant actor, ``gcmc-jobs run`` and the demo call:

1. claim the ``job_runs`` row (committed at once, so other workers see it);
2. run the job and mark the row ``succeeded`` with its stats and duration, in ONE
   transaction: the run is recorded exactly when its work is committed;
3. on an error, roll the work back, mark the row ``failed`` with the error (its own
   transaction), and re-raise so the message is retried; the retry claims the failed row.

Digest emails are enqueued inside step 2, before its commit: if the commit then fails, the
retry enqueues the same digests again and their dedup keys (and ``email_log``) drop them.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.tables import Id
from gcmc_jobs.errors import PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.scheduling import ledger
from gcmc_jobs.scheduling.jobs import (
    JOBS,
    DigestSender,
    JobContext,
    ReportStarter,
    SentDigests,
    check_job,
)
from gcmc_jobs.services import webhook_events
from gcmc_jobs.services.tenancy import local_today, utcnow
from gcmc_jobs.settings import Settings

__all__ = ["RunResult", "discard_digests", "run_for_tenant"]

log = get_logger("gcmc_jobs.schedule")


@dataclass(frozen=True)
class RunResult:
    """The outcome of one :func:`run_for_tenant` call."""

    job: str
    tenant_id: Id
    local_date: date
    claim: ledger.Claim
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        """True when this call did the work (it won the claim)."""
        return self.claim is ledger.Claim.CLAIMED


def discard_digests(found: Any) -> SentDigests:
    """A :data:`DigestSender` that sends nothing (compute-only runs)."""
    return SentDigests(queued=0, duplicates=0)


def run_for_tenant(
    engine: Engine,
    job: str,
    tenant_id: Id,
    *,
    local_date: date | None = None,
    now: datetime | None = None,
    scheduled_for: datetime | None = None,
    force: bool = False,
    send_digests: DigestSender = discard_digests,
    settings: Settings | None = None,
    start_report: ReportStarter | None = None,
    final_attempt: bool = True,
) -> RunResult:
    """Run ``job`` for ``tenant_id`` on ``local_date`` (default: the tenant's today at
    ``now``, default now) unless the ledger says it already ran; ``force`` re-runs a
    succeeded run. ``settings`` reach the job (:attr:`JobContext.settings`; the retention
    job's periods). Raises :class:`~gcmc_jobs.errors.UnknownJob` or
    :class:`~gcmc_jobs.errors.InvalidPayload` (no such tenant) before touching anything.
    ``start_report`` starts the monthly report chain (the ``monthly_report`` job); without
    one that job starts nothing.

    A run that fails on its ``final_attempt`` (default: a manual run is its own last try;
    the actor passes whether its retries are spent), or with a permanent error, also writes
    a ``job_run.failed`` webhook event in the transaction that marks it failed."""
    check_job(job)
    now = now or utcnow()
    with session_scope(engine) as session:
        day = local_date or local_today(session, tenant_id, now)
        if local_date is not None:
            local_today(session, tenant_id, now)  # the tenant must exist
        outcome = ledger.claim(
            session, job, tenant_id, day, now=now, scheduled_for=scheduled_for, force=force
        )
    bound = log.bind(job=job, tenant_id=tenant_id, local_date=day.isoformat())
    if outcome is not ledger.Claim.CLAIMED:
        bound.info("schedule.run_skipped", reason=outcome.value)
        return RunResult(job, tenant_id, day, outcome)
    started = _time.perf_counter()
    try:
        with session_scope(engine) as session:
            ctx = JobContext(
                session,
                tenant_id,
                day,
                now,
                send_digests,
                settings=settings,
                start_report=start_report,
            )
            stats = {"tenants": 1, **JOBS[job](ctx)}
            stats["duration_ms"] = round((_time.perf_counter() - started) * 1000, 3)
            ledger.succeed(session, job, tenant_id, day, now=_finished(now, started), stats=stats)
    except Exception as exc:
        with session_scope(engine) as session:
            ledger.fail(
                session,
                job,
                tenant_id,
                day,
                now=_finished(now, started),
                error=f"{type(exc).__name__}: {exc}",
            )
            if final_attempt or isinstance(exc, PermanentError):
                webhook_events.emit_job_run_failed(
                    session,
                    job=job,
                    tenant_id=tenant_id,
                    local_date=day,
                    error=f"{type(exc).__name__}: {exc}",
                    now=_finished(now, started),
                )
        bound.error("schedule.run_failed", error_type=type(exc).__name__)
        raise
    bound.info("schedule.run_succeeded", **stats)
    return RunResult(job, tenant_id, day, outcome, stats)


def _finished(now: datetime, started: float) -> datetime:
    """``now`` advanced by the elapsed time, so an injected clock still yields a duration."""
    return now + timedelta(seconds=_time.perf_counter() - started)

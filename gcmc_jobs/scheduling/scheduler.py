"""One scheduler tick: find the due runs and enqueue one ordinary message per run.

The tick is the only periodic message (``gcmc_jobs.actors.schedule.scheduler_tick``); the
work it finds travels as ordinary messages of ``run_daily_job``, which retry like any job
(periodiq's ``skip_delay`` never applies to them). Each message carries the dedup key
``job_run:<job>:<tenant>:<local date>``, so a tick that runs again before the first message
is processed does not queue a second copy; and if one slips through, the ledger's claim
still runs the job once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import dramatiq
import structlog
from sqlalchemy import Engine

from gcmc_jobs.bulk import enqueue_many
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.scheduling.tick import DueRun, due_runs

__all__ = ["TickResult", "run_key", "run_message", "tick"]

log = structlog.get_logger("gcmc_jobs.schedule")


@dataclass(frozen=True)
class TickResult:
    """What one tick found due, and how many messages it enqueued."""

    now: datetime
    due: list[DueRun] = field(default_factory=list)
    enqueued: int = 0
    duplicates: int = 0


def run_key(run: DueRun) -> str:
    """The dedup key of a due run's message."""
    return f"job_run:{run.job}:{run.tenant_id}:{run.local_date.isoformat()}"


def run_message(run: DueRun) -> dramatiq.Message[Any]:
    """The ``run_daily_job`` message of a due run."""
    from gcmc_jobs.actors.schedule import run_daily_job

    return run_daily_job.message_with_options(
        kwargs={
            "job": run.job,
            "tenant_id": run.tenant_id,
            "local_date": run.local_date.isoformat(),
            "scheduled_for": run.scheduled_for.isoformat(),
        },
        dedup_key=run_key(run),
        tenant_id=run.tenant_id,
    )


def tick(
    engine: Engine,
    broker: dramatiq.Broker,
    *,
    now: datetime,
    job_times: Mapping[str, time],
    jobs: Iterable[str] | None = None,
) -> TickResult:
    """Enqueue every run due at ``now`` (aware) that has no ``job_runs`` row yet."""
    with session_scope(engine) as session:
        due = due_runs(session, now, job_times, jobs=jobs)
    if not due:
        return TickResult(now=now)
    result = enqueue_many(broker, [run_message(run) for run in due])
    log.info(
        "schedule.tick",
        now=now.isoformat(),
        due=len(due),
        enqueued=len(result.enqueued),
        duplicates=result.duplicates,
    )
    return TickResult(now, due, len(result.enqueued), result.duplicates)

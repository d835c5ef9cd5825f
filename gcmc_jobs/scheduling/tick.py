"""One scheduler tick: find the due runs and enqueue one ordinary message per run.

The tick is the only periodic message (``gcmc_jobs.actors.schedule.scheduler_tick``); the
work it finds (:mod:`gcmc_jobs.scheduling.due_runs`) travels as ordinary messages of
``run_daily_job``, which retry like any job (periodiq's ``skip_delay`` never applies to
them). Each message carries the dedup key ``job_run:<job>:<tenant>:<local date>``, so a tick
that runs again before the first message is processed does not queue a second copy; and if
one slips through, the ledger's claim still runs the job once. The messages are built by
:func:`gcmc_jobs.scheduling.run_messages.run_message` from the factory the caller passes
(the ``run_daily_job`` actor's ``message_with_options``): scheduling imports no actor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import dramatiq
from sqlalchemy import Engine

from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.scheduling.due_runs import DEFAULT_CATCH_UP, DueRun, scan_due_runs
from gcmc_jobs.scheduling.run_messages import RunMessageFactory, run_message
from gcmc_jobs.scheduling.seen_tenants import record_seen_tenants
from gcmc_jobs.scheduling.tenant_problems import TenantProblem

__all__ = ["TickResult", "catch_up_for", "tick"]

log = get_logger("gcmc_jobs.schedule")


def catch_up_for(tick_minutes: int) -> timedelta:
    """How long a previous-day run stays due for a scheduler ticking every
    ``tick_minutes``: twice the period (the previous tick may run one period late)."""
    return timedelta(minutes=2 * tick_minutes)


@dataclass(frozen=True)
class TickResult:
    """What one tick found due, how many messages it enqueued, and the tenants it skipped
    (an unusable timezone; every other tenant was served)."""

    now: datetime
    due: list[DueRun] = field(default_factory=list)
    enqueued: int = 0
    duplicates: int = 0
    problems: list[TenantProblem] = field(default_factory=list)


def tick(
    engine: Engine,
    broker: dramatiq.Broker,
    *,
    now: datetime,
    job_times: Mapping[str, time],
    make_message: RunMessageFactory,
    jobs: Iterable[str] | None = None,
    catch_up: timedelta = DEFAULT_CATCH_UP,
    spread: timedelta = timedelta(0),
) -> TickResult:
    """Enqueue every run due at ``now`` (aware) that has no ``job_runs`` row yet, each as
    the message ``make_message`` builds (the ``run_daily_job`` actor's
    ``message_with_options``). ``catch_up``, ``spread``: see :func:`due_runs` (twice the
    tick period; the spread window). First records ``now`` as the first sighting of each
    active tenant new to the scheduler
    (:func:`~gcmc_jobs.scheduling.seen_tenants.record_seen_tenants`)."""
    with session_scope(engine) as session:
        record_seen_tenants(session, now)
        scan = scan_due_runs(session, now, job_times, jobs=jobs, catch_up=catch_up, spread=spread)
    due = scan.runs
    if not due:
        return TickResult(now=now, problems=scan.problems)
    messages = [
        run_message(
            make_message, run.job, run.tenant_id, run.local_date, scheduled_for=run.scheduled_for
        )
        for run in due
    ]
    result = enqueue_many(broker, messages)
    log.info(
        "schedule.tick",
        now=now.isoformat(),
        due=len(due),
        enqueued=len(result.enqueued),
        duplicates=result.duplicates,
        skipped_tenants=len(scan.problems),
    )
    return TickResult(now, due, len(result.enqueued), result.duplicates, scan.problems)

"""Helpers of the scheduling tests: a simulated clock that ticks the scheduler inline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import Engine

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.scheduling.due_runs import due_runs
from gcmc_jobs.scheduling.runner import RunResult, run_for_tenant
from gcmc_jobs.settings import DEFAULT_JOB_TIMES


@dataclass(frozen=True)
class Ran:
    """One run a simulated tick performed, with the tick's instant."""

    at: datetime
    result: RunResult


def tick_inline(
    engine: Engine, now: datetime, job_times: Mapping[str, time] = DEFAULT_JOB_TIMES
) -> list[Ran]:
    """One tick at ``now`` that runs the due runs in-process (as the worker would)."""
    with session_scope(engine) as session:
        due = due_runs(session, now, job_times)
    return [
        Ran(
            now,
            run_for_tenant(
                engine,
                run.job,
                run.tenant_id,
                local_date=run.local_date,
                now=now,
                scheduled_for=run.scheduled_for,
            ),
        )
        for run in due
    ]


def simulate(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    every: timedelta = timedelta(minutes=15),
    job_times: Mapping[str, time] = DEFAULT_JOB_TIMES,
    down: tuple[datetime, datetime] | None = None,
) -> list[Ran]:
    """Tick every ``every`` from ``start`` to ``end`` (excluded); no tick inside ``down``."""
    ran: list[Ran] = []
    now = start
    while now < end:
        if down is None or not (down[0] <= now < down[1]):
            ran.extend(tick_inline(engine, now, job_times))
        now += every
    return ran

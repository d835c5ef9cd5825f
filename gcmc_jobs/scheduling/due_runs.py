"""The due-runs query of the scheduler tick: which (job, tenant, local date) runs are due and
not yet run.

For each active timezone (one ``SELECT DISTINCT``) the tick computes in Python, with
:mod:`zoneinfo`, the tenant-local date and whether each job's local time has been reached
(:mod:`gcmc_jobs.scheduling.clock`: DST-correct). Then one ``SELECT`` per due job finds the
tenants in those timezones that have no ``job_runs`` row for (job, tenant, local date). The
number of statements depends on the number of jobs, never on the number of tenants; no
database timezone function is used, so PostgreSQL and SQLite agree with Python.

Each (tenant, job) owes at most one run per tick, its *pending occurrence*
(:func:`gcmc_jobs.scheduling.clock.pending_occurrence`): today's once due, else yesterday's
for ``catch_up`` after its due instant (so 23:58 runs though the next tick is on the next
local day). After downtime, today's missed runs are due at the next tick, and older days are
not replayed. A tenant whose last run of a job is older than the day before the run's has
its skipped days logged (``schedule.days_skipped``).

With a spread window (``spread``), each tenant runs at its own local time,
:func:`~gcmc_jobs.scheduling.clock.tenant_time`. The query then asks, per timezone, for every
local date some time of the window owes (at most the two days around midnight) and returns,
per tenant, which of those dates already have a run; the tenant's own time picks its
occurrence in Python. Still one ``SELECT`` per job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Exists, and_, exists, func, or_, select, true
from sqlalchemy.orm import Session

from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.scheduling.clock import pending_occurrence, tenant_time, window_times
from gcmc_jobs.scheduling.tenant_problems import TenantProblem, active_zones

__all__ = ["DEFAULT_CATCH_UP", "NO_SPREAD", "DueRun", "DueScan", "due_runs", "scan_due_runs"]

#: How long after its due instant a run of the previous local day stays due: twice the
#: default tick period (5 minutes), see :func:`~gcmc_jobs.scheduling.clock.pending_occurrence`.
DEFAULT_CATCH_UP = timedelta(minutes=10)

#: No spread: every tenant of a timezone runs at the job's time.
NO_SPREAD = timedelta(0)

log = get_logger("gcmc_jobs.schedule")


@dataclass(frozen=True)
class DueRun:
    """One daily run that is due: ``scheduled_for`` is the UTC instant it became due."""

    job: str
    tenant_id: Id
    local_date: date
    scheduled_for: datetime


@dataclass(frozen=True)
class DueScan:
    """What :func:`scan_due_runs` found: the due runs, and the tenants it had to skip."""

    runs: list[DueRun] = field(default_factory=list)
    problems: list[TenantProblem] = field(default_factory=list)


def due_runs(
    session: Session,
    now: datetime,
    job_times: Mapping[str, time],
    *,
    jobs: Iterable[str] | None = None,
    tenant_ids: Iterable[Id] | None = None,
    catch_up: timedelta = DEFAULT_CATCH_UP,
    spread: timedelta = NO_SPREAD,
) -> list[DueRun]:
    """The runs of :func:`scan_due_runs` (the tenants it skipped are logged)."""
    return scan_due_runs(
        session,
        now,
        job_times,
        jobs=jobs,
        tenant_ids=tenant_ids,
        catch_up=catch_up,
        spread=spread,
    ).runs


def scan_due_runs(
    session: Session,
    now: datetime,
    job_times: Mapping[str, time],
    *,
    jobs: Iterable[str] | None = None,
    tenant_ids: Iterable[Id] | None = None,
    catch_up: timedelta = DEFAULT_CATCH_UP,
    spread: timedelta = NO_SPREAD,
) -> DueScan:
    """Every run due at the aware instant ``now`` that has no ``job_runs`` row yet, and the
    active tenants skipped because their timezone is unusable (each logged as
    ``schedule.bad_timezone`` with its id and name; every other tenant is served).

    ``jobs`` and ``tenant_ids`` narrow the search; ``catch_up`` is how long a run of the
    previous local day stays due (the tick passes twice its period); ``spread`` is the
    window the tenants of one timezone are spread over (zero: none). Ordered by scheduled
    time, job, tenant.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zones, problems = active_zones(session)
    only = list(tenant_ids) if tenant_ids is not None else None
    if only is not None:
        problems = [p for p in problems if p.tenant_id in only]
    for problem in problems:
        log.error(
            "schedule.bad_timezone",
            tenant_id=problem.tenant_id,
            tenant=problem.tenant_name,
            timezone=problem.timezone,
            error=problem.problem,
        )
    t = tables_of(session)
    tenant, jr = t.tenants.c, t.job_runs.c
    found: list[DueRun] = []
    for job in jobs if jobs is not None else job_times:
        at = job_times[job]
        # Every local time of the window (the job's alone when not spread)
        times = window_times(at, spread)
        # (local date) -> timezone names in which some time of the window owes that date
        by_day: dict[date, set[str]] = defaultdict(set)
        for name, zone in zones.items():
            for local in times:
                owed = pending_occurrence(now, local, zone, catch_up=catch_up)
                if owed is not None:
                    by_day[owed[0]].add(name)
        if not by_day:
            continue
        last_run = (
            select(func.max(jr.local_date))
            .where(jr.job == job, jr.tenant_id == tenant.id)
            .scalar_subquery()
        )
        days = sorted(by_day)

        def has_run(day: date, job: str = job) -> Exists:
            return exists().where(jr.job == job, jr.tenant_id == tenant.id, jr.local_date == day)

        pending = or_(
            *(and_(tenant.timezone.in_(sorted(by_day[day])), ~has_run(day)) for day in days)
        )
        # With a spread, which of the candidate dates each tenant has already run (one column
        # per date, at most three across every timezone). Without, a zone owes one date and
        # the tenants the query returns have not run it.
        ran = [has_run(day).label(f"ran_{i}") for i, day in enumerate(days)] if spread else []
        query = select(tenant.id, tenant.timezone, last_run, *ran).where(
            tenant.is_active.is_(true()), pending
        )
        if only is not None:
            query = query.where(tenant.id.in_(only))
        for row in session.execute(query.order_by(tenant.id)):
            tenant_id, zone_name, last = row[0], row[1], row[2]
            owed = pending_occurrence(
                now, tenant_time(at, tenant_id, spread), zones[zone_name], catch_up=catch_up
            )
            if owed is None:
                continue  # its own time is not due yet
            day, instant = owed
            if zone_name not in by_day.get(day, ()) or (spread and row[3 + days.index(day)]):
                continue  # owes a date it has already run
            if last is not None and last < day - timedelta(days=1):
                log.warning(
                    "schedule.days_skipped",
                    job=job,
                    tenant_id=tenant_id,
                    last_run=last.isoformat(),
                    today=day.isoformat(),
                    skipped=(day - last).days - 1,
                    note="older days are not replayed",
                )
            found.append(DueRun(job, tenant_id, day, instant))
    found.sort(key=lambda run: (run.scheduled_for, run.job, run.tenant_id))
    return DueScan(found, problems)

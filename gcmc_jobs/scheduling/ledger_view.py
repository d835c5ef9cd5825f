"""The job ledger as operators read it: past runs, next runs, and overdue runs.

One read model behind ``gcmc-jobs runs`` / ``schedules``, ``GET /api/runs`` /
``/api/schedules``, the dashboard and the ``daily_jobs`` health check, so they all say what
the scheduler does: every due instant is :func:`gcmc_jobs.scheduling.clock.due_instant`,
the tick's own computation (a time skipped by a spring-forward change is due when the gap
ends, a repeated one at its first occurrence), at the tenant's own local time
(:func:`~gcmc_jobs.scheduling.clock.tenant_time`) when the schedule is spread (``spread``).
Never ``datetime.combine(day, at, zone)``, which is wrong on DST days.

======================  =================================================  ==================
function                answers                                            statements
======================  =================================================  ==================
:func:`list_runs`       the ``job_runs`` rows, filtered, newest first,     1
                        paginated
:func:`next_runs`       per tenant and job: the next due instant (local    2
                        and UTC) and today's ledger status
:func:`job_statuses`    per active tenant and job: the latest local date   3
                        that should have run by now, and whether it did
                        (counted only once the scheduler knew the tenant)
:func:`overdue_runs`    the overdue ones among :func:`job_statuses`        3
======================  =================================================  ==================

The statement counts do not depend on the number of tenants or runs. Every function takes
a :class:`~sqlalchemy.orm.Session` and an aware ``now``; none writes. Enqueueing a run by
hand is :func:`gcmc_jobs.scheduling.run_messages.trigger_runs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import JobRunStatus
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload, UnknownTenant
from gcmc_jobs.scheduling.clock import due_instant, is_due, local_date, tenant_time
from gcmc_jobs.scheduling.due_runs import NO_SPREAD
from gcmc_jobs.services.tenancy import tenant_zone

__all__ = [
    "INACTIVE",
    "JobStatus",
    "LedgerRun",
    "NextRun",
    "job_statuses",
    "list_runs",
    "next_runs",
    "overdue_runs",
]

#: Said of a tenant the scheduler skips because it is inactive.
INACTIVE = "inactive tenant: not scheduled"


# -- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRun:
    """One ``job_runs`` row."""

    id: int
    job: str
    tenant_id: Id
    local_date: date
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    status: JobRunStatus
    stats: dict[str, Any]
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (dates and instants in ISO 8601)."""
        return {
            "id": self.id,
            "job": self.job,
            "tenant_id": self.tenant_id,
            "local_date": self.local_date.isoformat(),
            "scheduled_for": _iso(self.scheduled_for),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "status": self.status.value,
            "stats": dict(self.stats),
            "error": self.error,
        }


def list_runs(
    session: Session,
    *,
    job: str | None = None,
    tenant_id: Id | None = None,
    since: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LedgerRun]:
    """The ledger, newest local date first (then newest row): ``limit`` rows after skipping
    ``offset``, only ``job``'s, ``tenant_id``'s, and local dates from ``since``. One
    ``SELECT``."""
    if limit < 1 or offset < 0:
        raise ValueError("limit must be at least 1 and offset at least 0")
    job_runs = tables_of(session).job_runs
    jr = job_runs.c
    query = select(job_runs).order_by(jr.local_date.desc(), jr.id.desc())
    if job is not None:
        query = query.where(jr.job == job)
    if tenant_id is not None:
        query = query.where(jr.tenant_id == tenant_id)
    if since is not None:
        query = query.where(jr.local_date >= since)
    return [
        LedgerRun(
            id=r.id,
            job=r.job,
            tenant_id=r.tenant_id,
            local_date=r.local_date,
            scheduled_for=r.scheduled_for,
            started_at=r.started_at,
            finished_at=r.finished_at,
            status=r.status,
            stats=dict(r.stats or {}),
            error=r.error,
        )
        for r in session.execute(query.limit(limit).offset(offset))
    ]


# -- next runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextRun:
    """When a tenant's daily job runs next, as of the ``now`` it was computed at.

    ``due_at`` (UTC) is the instant the scheduler's tick enqueues it from: today's run until
    the ledger has a row for it (a ``due_at`` in the past is due and waits for the next
    tick: ``waiting``), then tomorrow's. ``today_status`` is the ledger status of the tenant's
    ``today`` run (None: no row). ``problem`` says why there is no next run (an unknown
    timezone, an inactive tenant); the instants are then None.
    """

    job: str
    at: time
    tenant_id: Id
    tenant_name: str
    timezone: str
    today: date | None
    local_date: date | None
    due_at: datetime | None
    today_status: JobRunStatus | None
    problem: str | None = None
    #: True when ``due_at`` is at or before the ``now`` it was computed at and the run has
    #: no ledger row: due, not run yet, waiting for the next tick (not a future run).
    waiting: bool = False
    #: The tenant's own local time for the job: ``at`` when the schedule is not spread,
    #: else some minutes into the window (:func:`~gcmc_jobs.scheduling.clock.tenant_time`).
    tenant_at: time | None = None

    @property
    def offset_minutes(self) -> int:
        """How many minutes after ``at`` the tenant's runs are due (the spread)."""
        if self.tenant_at is None:
            return 0
        return (self.tenant_at.hour - self.at.hour) * 60 + self.tenant_at.minute - self.at.minute

    @property
    def due_local(self) -> datetime | None:
        """``due_at`` in the tenant's timezone."""
        return None if self.due_at is None else self.due_at.astimezone(ZoneInfo(self.timezone))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: what ``gcmc-jobs schedules --json`` prints."""
        return {
            "job": self.job,
            "local_time": self.at.strftime("%H:%M"),
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_name,
            "timezone": self.timezone,
            "local_date": _iso(self.local_date),
            "next_run_local": _iso(self.due_local),
            "next_run_utc": _iso(self.due_at),
            "today_status": None if self.today_status is None else self.today_status.value,
            "waiting": self.waiting,
            "problem": self.problem,
            "offset_minutes": self.offset_minutes,
        }


def next_runs(
    session: Session,
    job_times: Mapping[str, time],
    *,
    now: datetime,
    tenant_id: Id | None = None,
    limit: int | None = None,
    spread: timedelta = NO_SPREAD,
) -> list[NextRun]:
    """Each job's next run for every active tenant (or only ``tenant_id``, active or not),
    at most ``limit`` tenants, by tenant id then job, each at its own time in the ``spread``
    window. Two ``SELECT``s: the tenants, and the ledger rows of their local today.

    Raises :class:`~gcmc_jobs.errors.UnknownTenant` when ``tenant_id`` does not exist.
    """
    _aware(now)
    tables = tables_of(session)
    tenant, jr = tables.tenants.c, tables.job_runs.c
    query = select(tenant.id, tenant.name, tenant.timezone, tenant.is_active).order_by(tenant.id)
    if tenant_id is not None:
        query = query.where(tenant.id == tenant_id)
    else:
        query = query.where(tenant.is_active.is_(True))
    if limit is not None:
        query = query.limit(limit)
    tenants = session.execute(query).all()
    if tenant_id is not None and not tenants:
        raise UnknownTenant(f"no tenant with id {tenant_id}")
    zones = {name: _zone(name) for name in {t.timezone for t in tenants}}
    # Each tenant's local date at now (only a few distinct dates across every zone).
    todays: dict[Id, date] = {}
    for t in tenants:
        zone = zones[t.timezone]
        if not isinstance(zone, str):
            todays[t.id] = local_date(now, zone)
    statuses: dict[tuple[str, Id, date], JobRunStatus] = {}
    if todays:
        rows = session.execute(
            select(jr.job, jr.tenant_id, jr.local_date, jr.status).where(
                jr.tenant_id.in_(query.with_only_columns(tenant.id)),
                jr.local_date.in_(sorted(set(todays.values()))),
                jr.job.in_(list(job_times)),
            )
        )
        statuses = {(r.job, r.tenant_id, r.local_date): r.status for r in rows}
    found: list[NextRun] = []
    for t in tenants:
        zone = zones[t.timezone]
        today = todays.get(t.id)
        problem = zone if isinstance(zone, str) else None if t.is_active else INACTIVE
        for job, at in job_times.items():
            status = None if today is None else statuses.get((job, t.id, today))
            day: date | None = None
            instant: datetime | None = None
            own = tenant_time(at, t.id, spread)
            if problem is None and not isinstance(zone, str):
                due, day, instant = is_due(now, own, zone)
                if due and status is not None:  # today's has a ledger row: tomorrow's is next
                    day = day + timedelta(days=1)
                    instant = due_instant(day, own, zone)
            found.append(
                NextRun(
                    job=job,
                    at=at,
                    tenant_id=t.id,
                    tenant_name=t.name,
                    timezone=t.timezone,
                    today=today,
                    local_date=day,
                    due_at=instant,
                    today_status=status,
                    problem=problem,
                    waiting=instant is not None and instant <= now,
                    tenant_at=own,
                )
            )
    return found


# -- overdue runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    """Whether an active tenant's daily job ran for the latest local date it should have.

    ``due_date`` is the latest local date whose run was due (:func:`due_instant`, as the
    tick) at least ``grace`` before ``now``; ``due_at`` its due instant (UTC). The run is
    ``overdue`` when no run succeeded for that date or a later one and the run was possible
    (:func:`run_was_possible`: the scheduler knew the tenant, ``scheduled_since``, by that
    local day, and ``grace`` has passed since), or when the tenant's timezone is unknown
    (``problem``: the scheduler never runs it).
    """

    job: str
    tenant_id: Id
    timezone: str
    due_date: date | None
    due_at: datetime | None
    last_run_date: date | None
    last_run_status: JobRunStatus | None
    last_success_date: date | None
    overdue: bool
    problem: str | None = None
    tenant_name: str = ""
    #: When the scheduler's tick first saw the tenant (``scheduled_tenants``); None: not
    #: yet, so none of its runs is overdue.
    scheduled_since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: one row of the ``daily_jobs`` health check."""
        return {
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_name,
            "last_run_date": _iso(self.last_run_date),
            "last_run_status": None if self.last_run_status is None else self.last_run_status.value,
            "last_success_date": _iso(self.last_success_date),
            "due_date": _iso(self.due_date),
            "due_at": _iso(self.due_at),
            "overdue": self.overdue,
            "problem": self.problem,
            "scheduled_since": _iso(self.scheduled_since),
        }


def job_statuses(
    session: Session,
    job_times: Mapping[str, time],
    *,
    now: datetime,
    grace: timedelta,
    spread: timedelta = NO_SPREAD,
) -> list[JobStatus]:
    """Every job's status for every active tenant, by job (in ``job_times`` order) then
    tenant id; each tenant's runs due at its own time in the ``spread`` window. Three
    ``SELECT``s: the tenants (with when the scheduler first saw them), each (job, tenant)'s
    last run, and its last success."""
    _aware(now)
    tables = tables_of(session)
    tenant, jr, seen = tables.tenants.c, tables.job_runs.c, tables.scheduled_tenants.c
    tenants = session.execute(
        select(tenant.id, tenant.timezone, tenant.name, seen.first_seen_at)
        .outerjoin(tables.scheduled_tenants, seen.tenant_id == tenant.id)
        .where(tenant.is_active.is_(True))
        .order_by(tenant.id)
    ).all()
    jobs = list(job_times)
    latest = (
        select(jr.job, jr.tenant_id, func.max(jr.local_date).label("local_date"))
        .where(jr.job.in_(jobs))
        .group_by(jr.job, jr.tenant_id)
        .subquery()
    )
    last = {
        (r.job, r.tenant_id): (r.local_date, r.status)
        for r in session.execute(
            select(jr.job, jr.tenant_id, jr.local_date, jr.status).join(
                latest,
                (jr.job == latest.c.job)
                & (jr.tenant_id == latest.c.tenant_id)
                & (jr.local_date == latest.c.local_date),
            )
        )
    }
    succeeded = {
        (r.job, r.tenant_id): r.local_date
        for r in session.execute(
            select(jr.job, jr.tenant_id, func.max(jr.local_date).label("local_date"))
            .where(jr.status == JobRunStatus.SUCCEEDED, jr.job.in_(jobs))
            .group_by(jr.job, jr.tenant_id)
        )
    }
    zones = {name: _zone(name) for name in {row.timezone for row in tenants}}
    found: list[JobStatus] = []
    for job, at in job_times.items():
        for tenant_id, timezone, tenant_name, since in tenants:
            last_date, last_status = last.get((job, tenant_id), (None, None))
            done = succeeded.get((job, tenant_id))
            zone = zones[timezone]
            day: date | None = None
            instant: datetime | None = None
            possible = False
            if not isinstance(zone, str):
                day, instant = latest_due(now, tenant_time(at, tenant_id, spread), zone, grace)
                possible = run_was_possible(day, instant, _utc(since), zone, now, grace)
            found.append(
                JobStatus(
                    job=job,
                    tenant_id=tenant_id,
                    timezone=timezone,
                    due_date=day,
                    due_at=instant,
                    last_run_date=last_date,
                    last_run_status=last_status,
                    last_success_date=done,
                    overdue=day is None or (possible and (done is None or done < day)),
                    problem=zone if isinstance(zone, str) else None,
                    tenant_name=tenant_name,
                    scheduled_since=_utc(since),
                )
            )
    return found


def overdue_runs(
    session: Session,
    job_times: Mapping[str, time],
    *,
    now: datetime,
    grace: timedelta,
    spread: timedelta = NO_SPREAD,
) -> list[JobStatus]:
    """The :func:`job_statuses` that are overdue."""
    statuses = job_statuses(session, job_times, now=now, grace=grace, spread=spread)
    return [s for s in statuses if s.overdue]


def latest_due(now: datetime, at: time, zone: ZoneInfo, grace: timedelta) -> tuple[date, datetime]:
    """The latest local date whose run of the job at ``at`` was due at least ``grace``
    before ``now``, and that due instant (UTC)."""
    # Any instant of the local date after that of now - grace is later than now - grace, so
    # the answer is that date or the one before (two iterations at most).
    day = local_date(now - grace, zone)
    while True:
        instant = due_instant(day, at, zone)
        if instant + grace <= now:
            return day, instant
        day -= timedelta(days=1)


def run_was_possible(
    day: date,
    instant: datetime,
    since: datetime | None,
    zone: ZoneInfo,
    now: datetime,
    grace: timedelta,
) -> bool:
    """Whether the run of local ``day`` (due at ``instant``) can be overdue at ``now``
    for a tenant the scheduler first saw at ``since`` (None: not yet).

    The tick runs a day's missed run at any tick of that local day, so the run was possible
    when the scheduler knew the tenant by the end of ``day``; it is late ``grace`` after
    the later of its due instant and that first sighting. A day before the first sighting
    (the tenant did not exist, or the package was not installed) never is.
    """
    if since is None or local_date(since, zone) > day:
        return False
    return max(instant, since) + grace <= now


# -- helpers ----------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware instant (SQLite returns naive UTC timestamps)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _zone(name: str) -> ZoneInfo | str:
    """The zone, or the reason it is unusable (the scheduler logs and skips such tenants)."""
    try:
        return tenant_zone(name)
    except InvalidPayload as exc:
        return str(exc)


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()

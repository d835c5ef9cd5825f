"""The ``run_daily_job`` messages: their dedup key, how they are built, and manual triggers.

Every way a daily run is enqueued builds its message here, so they share one dedup key,
``job_run:<job>:<tenant id>:<local date>``: the scheduler tick (:func:`~.tick.tick`),
``gcmc-jobs run --enqueue``, ``POST /api/jobs/{job}/run`` and the demo. A second message for
the same run is dropped at enqueue as a duplicate while the first is pending, and for the
deduplication TTL (24 h) after it succeeded; the ``job_runs`` row still guards the run itself.

A *forced* run (``force=True``) carries no dedup key, so it is never dropped, and asks the
runner to claim a run that already succeeded.

Scheduling sits below the actors and never imports them: callers pass the
``run_daily_job`` actor's ``message_with_options`` as the :class:`RunMessageFactory`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import dramatiq
from sqlalchemy import select
from sqlalchemy.orm import Session

from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import UnknownTenant
from gcmc_jobs.scheduling.clock import local_date as local_date_at
from gcmc_jobs.scheduling.jobs import check_job
from gcmc_jobs.scheduling.tenant_problems import TenantProblem, zones_of

__all__ = [
    "RunMessageFactory",
    "TriggerResult",
    "TriggeredRun",
    "run_key",
    "run_message",
    "trigger_runs",
]


class RunMessageFactory(Protocol):
    """Builds a ``run_daily_job`` message: the actor's ``message_with_options``."""

    def __call__(
        self, *, args: tuple[Any, ...] = ..., kwargs: dict[str, Any] | None = ..., **options: Any
    ) -> dramatiq.Message[Any]: ...


def run_key(job: str, tenant_id: Id, local_date: date) -> str:
    """The dedup key of the run of ``job`` for ``tenant_id`` on its ``local_date``."""
    return f"job_run:{job}:{tenant_id}:{local_date.isoformat()}"


def run_message(
    make_message: RunMessageFactory,
    job: str,
    tenant_id: Id,
    local_date: date,
    *,
    scheduled_for: datetime | None = None,
    force: bool = False,
) -> dramatiq.Message[Any]:
    """The ``run_daily_job`` message of one run: keyed by :func:`run_key` unless ``force``."""
    kwargs: dict[str, Any] = {
        "job": job,
        "tenant_id": tenant_id,
        "local_date": local_date.isoformat(),
    }
    if scheduled_for is not None:
        kwargs["scheduled_for"] = scheduled_for.isoformat()
    if force:
        return make_message(kwargs={**kwargs, "force": True}, tenant_id=tenant_id)
    return make_message(
        kwargs=kwargs, dedup_key=run_key(job, tenant_id, local_date), tenant_id=tenant_id
    )


@dataclass(frozen=True)
class TriggeredRun:
    """One run :func:`trigger_runs` asked for: its message id, or None when its dedup key
    was taken (a message for that run is pending or recently succeeded)."""

    job: str
    tenant_id: Id
    local_date: date
    force: bool
    dedup_key: str | None
    message_id: str | None

    @property
    def duplicate(self) -> bool:
        """True when nothing was enqueued because the run's dedup key is taken."""
        return self.message_id is None


@dataclass(frozen=True)
class TriggerResult:
    """Every run :func:`trigger_runs` asked for, in tenant id order, and the tenants it
    skipped because their local date cannot be known (an unusable timezone)."""

    runs: list[TriggeredRun] = field(default_factory=list)
    problems: list[TenantProblem] = field(default_factory=list)

    @property
    def enqueued(self) -> int:
        """How many messages were enqueued."""
        return sum(not run.duplicate for run in self.runs)

    @property
    def duplicates(self) -> int:
        """How many were dropped because their run's dedup key is taken."""
        return sum(run.duplicate for run in self.runs)


def trigger_runs(
    session: Session,
    broker: dramatiq.Broker,
    make_message: RunMessageFactory,
    job: str,
    tenant_ids: Iterable[Id] | None = None,
    *,
    now: datetime,
    local_date: date | None = None,
    force: bool = False,
) -> TriggerResult:
    """Enqueue the run of ``job`` for each of ``tenant_ids`` (default: every active tenant)
    on ``local_date`` (default: each tenant's local date at ``now``), in bulk.

    The messages are the tick's (:func:`run_message`); ``force`` re-runs a run that already
    succeeded. One ``SELECT`` whatever the number of tenants, then one bulk enqueue. Raises
    :class:`~gcmc_jobs.errors.UnknownJob` or :class:`~gcmc_jobs.errors.UnknownTenant`
    before enqueueing anything. A tenant whose timezone is not an IANA name (when its local
    date is needed) is skipped and listed in :attr:`TriggerResult.problems`; the others are
    enqueued.
    """
    check_job(job)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tenant = tables_of(session).tenants.c
    query = select(tenant.id, tenant.name, tenant.timezone).order_by(tenant.id)
    wanted = sorted(set(tenant_ids)) if tenant_ids is not None else None
    if wanted is None:
        query = query.where(tenant.is_active.is_(True))
    else:
        query = query.where(tenant.id.in_(wanted))
    tenants = session.execute(query).all()
    if wanted is not None:
        missing = sorted(set(wanted) - {row.id for row in tenants})
        if missing:
            raise UnknownTenant(f"no tenant with id {', '.join(map(str, missing))}")
    zones, bad = zones_of({t.timezone for t in tenants} if local_date is None else ())
    problems = [
        TenantProblem(t.id, t.name, t.timezone, bad[t.timezone])
        for t in tenants
        if t.timezone in bad
    ]
    days = {
        t.id: local_date or local_date_at(now, zones[t.timezone])
        for t in tenants
        if t.timezone not in bad
    }
    messages = [
        run_message(make_message, job, tenant_id, day, force=force)
        for tenant_id, day in days.items()
    ]
    sent = {message.message_id for message in enqueue_many(broker, messages).enqueued}
    return TriggerResult(
        [
            TriggeredRun(
                job,
                tenant_id,
                days[tenant_id],
                force,
                message.options.get("dedup_key"),
                message.message_id if message.message_id in sent else None,
            )
            for tenant_id, message in zip(days, messages, strict=True)
        ],
        problems,
    )

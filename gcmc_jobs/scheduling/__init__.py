"""Tenant-local daily jobs driven by a run ledger (``job_runs``).

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``clock``          when a tenant-local daily time happens, as a UTC instant, across DST
``due_runs``       which (job, tenant, local date) runs are due and have no ledger row yet
``ledger``         claim / succeed / fail a ``job_runs`` row: the once-per-day guard
``jobs``           the daily jobs by name (``JOBS``), each a function of a ``JobContext``;
                   a host's own: ``daily_job``, ``register_daily_job``, ``job_times``
``runner``         ``run_for_tenant``: claim, run and record one job for one tenant
``tick``           ``tick``: enqueue one ``run_daily_job`` message per due run, in bulk
``run_messages``   the ``run_daily_job`` message and its dedup key; ``trigger_runs`` by hand
``ledger_view``    the ledger as operators read it: runs, next runs, overdue runs
``mailing``        digests → validated email messages, enqueued in bulk
=================  ==========================================================================

The actors are :func:`gcmc_jobs.actors.scheduler_tick` (periodic, every minute, working
every ``Settings.scheduler_tick_minutes``) and :func:`gcmc_jobs.actors.run_daily_job`.
Scheduling imports neither (they sit above it): whoever enqueues a run passes
``run_daily_job``'s ``message_with_options`` (a :class:`RunMessageFactory`), and digest
mailing receives the email message factory (``gcmc_jobs.actors.email.email_message``).
"""

from __future__ import annotations

from gcmc_jobs.scheduling.clock import due_instant, is_due, next_due
from gcmc_jobs.scheduling.due_runs import DueRun, due_runs
from gcmc_jobs.scheduling.jobs import (
    JOB_NAMES,
    JOBS,
    JobContext,
    check_job,
    daily_job,
    host_jobs,
    import_host_modules,
    job_times,
    register_daily_job,
)
from gcmc_jobs.scheduling.ledger import Claim
from gcmc_jobs.scheduling.ledger_view import (
    JobStatus,
    LedgerRun,
    NextRun,
    job_statuses,
    list_runs,
    next_runs,
    overdue_runs,
)
from gcmc_jobs.scheduling.run_messages import (
    RunMessageFactory,
    TriggeredRun,
    TriggerResult,
    run_key,
    trigger_runs,
)
from gcmc_jobs.scheduling.runner import RunResult, run_for_tenant
from gcmc_jobs.scheduling.tick import TickResult, tick

__all__ = [
    "JOBS",
    "JOB_NAMES",
    "Claim",
    "DueRun",
    "JobContext",
    "JobStatus",
    "LedgerRun",
    "NextRun",
    "RunMessageFactory",
    "RunResult",
    "TickResult",
    "TriggerResult",
    "TriggeredRun",
    "check_job",
    "daily_job",
    "due_instant",
    "due_runs",
    "host_jobs",
    "import_host_modules",
    "is_due",
    "job_statuses",
    "job_times",
    "list_runs",
    "next_due",
    "next_runs",
    "overdue_runs",
    "register_daily_job",
    "run_for_tenant",
    "run_key",
    "tick",
    "trigger_runs",
]

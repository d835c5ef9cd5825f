"""Tenant-local daily jobs driven by a run ledger (``job_runs``).

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``clock``          when a tenant-local daily time happens, as a UTC instant, across DST
``tick``           which (job, tenant, local date) runs are due and have no ledger row yet
``ledger``         claim / succeed / fail a ``job_runs`` row: the once-per-day guard
``jobs``           the daily jobs by name (``JOBS``), each a function of a ``JobContext``
``runner``         ``run_for_tenant``: claim, run and record one job for one tenant
``scheduler``      ``tick``: enqueue one ``run_daily_job`` message per due run, in bulk
``mailing``        digests → validated email messages, enqueued in bulk
=================  ==========================================================================

The actors are :func:`gcmc_jobs.actors.scheduler_tick` (periodic, every minute, working
every ``Settings.scheduler_tick_minutes``) and :func:`gcmc_jobs.actors.run_daily_job`.
"""

from __future__ import annotations

from gcmc_jobs.scheduling.clock import due_instant, is_due, next_due
from gcmc_jobs.scheduling.jobs import JOB_NAMES, JOBS, check_job
from gcmc_jobs.scheduling.ledger import Claim
from gcmc_jobs.scheduling.runner import RunResult, run_for_tenant
from gcmc_jobs.scheduling.scheduler import TickResult, tick
from gcmc_jobs.scheduling.tick import DueRun, due_runs

__all__ = [
    "JOBS",
    "JOB_NAMES",
    "Claim",
    "DueRun",
    "RunResult",
    "TickResult",
    "check_job",
    "due_instant",
    "due_runs",
    "is_due",
    "next_due",
    "run_for_tenant",
    "tick",
]

"""Every health check by name (:data:`ALL_CHECKS`), and the quick readiness ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from gcmc_jobs.ops.health.connectivity import check_broker, check_database, check_redis
from gcmc_jobs.ops.health.daily_jobs import check_daily_jobs
from gcmc_jobs.ops.health.dead_letters import check_dead_letters
from gcmc_jobs.ops.health.mail_circuit import check_mail_circuit
from gcmc_jobs.ops.health.queue_backlog import check_queues
from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.ops.health.workers import check_workers
from gcmc_jobs.settings import Settings

__all__ = ["ALL_CHECKS", "READINESS_CHECKS", "Check"]

#: A check: settings, the engine (None for checks that need no database) and the instant
#: of the run in, a result out. It may raise or block: the runner bounds and reports it.
Check = Callable[[Settings, Engine | None, datetime], CheckResult]

#: Every check of :func:`~gcmc_jobs.ops.health.check_health`, by name, in report order.
ALL_CHECKS: dict[str, Check] = {
    "broker": check_broker,
    "redis": check_redis,
    "database": check_database,
    "workers": check_workers,
    "queues": check_queues,
    "dead_letters": check_dead_letters,
    "daily_jobs": check_daily_jobs,
    "mail_circuit": check_mail_circuit,
}
#: The quick checks behind ``/health/ready``: can this process reach what it needs.
READINESS_CHECKS = ("broker", "redis", "database")

"""Health checks: is this deployment able to run its jobs, and has it?

:func:`check_health` (:mod:`.runner`) runs every check in parallel, each bounded by
``settings.health_timeout_ms``, and returns a :class:`HealthReport` (:mod:`.report`); a
check that times out or raises is ``unhealthy`` with the error in its detail. Statuses,
worst last: ``ok`` < ``warning`` (look at it) < ``unhealthy`` (jobs are or will be lost or
late). The checks, by name in :data:`ALL_CHECKS` (:mod:`.registry`):

============  ================  ====================================================================
 check         module            unhealthy when … (warning when …)
============  ================  ====================================================================
 broker        connectivity      the broker does not answer
 redis         connectivity      the stores' Redis does not answer, or its ``maxmemory-policy`` is
                                 not ``noeviction`` (an evicting Redis silently drops queued
                                 messages); (warning: persistence off, ``save ""`` and
                                 ``appendonly no``; CONFIG refused)
 database      connectivity      ``SELECT 1`` fails
 workers       workers           — (warning: no live worker: no heartbeat within
                                 ``broker_heartbeat_timeout_ms`` from a process that
                                 ``WorkerRegistry`` registered; senders do not count)
 queues        queue_backlog     a running queue has more than ``health_max_ready`` ready
                                 messages, or its oldest ready message is older than
                                 ``health_max_age_ms``; (warning: a queue is paused;
                                 ``ok`` on the stub broker with no runtime in this
                                 process: nothing to inspect)
 dead_letters  dead_letters      — (warning: dead letters wait to be replayed or purged)
 daily_jobs    daily_jobs        an active tenant's daily job has not succeeded for its due local
                                 date ``health_job_grace_ms`` after its due instant (the
                                 scheduler's, :mod:`gcmc_jobs.scheduling.ledger_view`)
 mail_circuit  mail_circuit      the mail server's circuit breaker is open: email is held (late,
                                 not lost) until a probe finds the server back; (warning: half
                                 open, critical email goes first)
============  ================  ====================================================================
"""

from __future__ import annotations

from gcmc_jobs.ops.health.registry import ALL_CHECKS, READINESS_CHECKS
from gcmc_jobs.ops.health.report import CheckResult, HealthReport, Status
from gcmc_jobs.ops.health.runner import check_health

__all__ = [
    "ALL_CHECKS",
    "READINESS_CHECKS",
    "CheckResult",
    "HealthReport",
    "Status",
    "check_health",
]

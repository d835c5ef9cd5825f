"""The ``workers`` health check: which workers are alive, and the queues they consume.

Live workers are read by :func:`gcmc_jobs.ops.live_workers.live_workers`: a heartbeat
within ``broker_heartbeat_timeout_ms`` *and* a ``WorkerRegistry`` entry. Dramatiq writes a
heartbeat on every enqueue too, so a host process that only sends is counted as a sender,
not a worker.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.ops.live_workers import live_workers
from gcmc_jobs.settings import Settings

__all__ = ["check_workers"]


def check_workers(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """A warning when no consuming Redis worker sent a heartbeat within
    ``broker_heartbeat_timeout_ms``; lists each live one's host, pid, queues, threads,
    metrics exporter address (``metrics``: where its message counters are, None without
    ``GCMC_JOBS_METRICS_PORT``) and figures (``stats``: busy threads, messages processed
    and failed, mean and p95 processing time, memory; None with
    ``GCMC_JOBS_WORKER_STATS_INTERVAL_MS=0``), and counts the other heartbeats
    (``not_consuming``: no registry entry, so a process that only sends, or a worker that
    has just stopped)."""
    if settings.broker_kind != "redis":
        return CheckResult(
            "ok", "heartbeats exist on Redis only; see each queue's consumers", {"workers": []}
        )
    live = live_workers(settings, now)
    data = {"workers": live.workers, "not_consuming": live.not_consuming}
    if not live.workers:
        return CheckResult(
            "warning",
            "no live worker (no consuming worker's heartbeat in "
            f"{settings.broker_heartbeat_timeout_ms} ms; {live.not_consuming} heartbeat(s) of "
            "processes that do not consume)",
            data,
        )
    return CheckResult("ok", f"{len(live.workers)} live worker(s)", data)

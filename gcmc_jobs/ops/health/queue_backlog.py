"""The ``queues`` health check: a running queue too deep or too old; a paused one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from gcmc_jobs.ops.health.report import CheckResult, Status, worst
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.runtime import installed
from gcmc_jobs.settings import Settings

__all__ = ["check_queues"]


def check_queues(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy when a running queue has more than ``health_max_ready`` ready messages or
    its oldest ready one is older than ``health_max_age_ms``; a warning when one is paused.

    On the in-process stub broker the queues live in the process that configured gcmc-jobs:
    without a runtime in this process (``gcmc-jobs health`` in a shell) there is nothing to
    inspect, which is ``ok``, said so, not an error.
    """
    if settings.broker_kind == "stub" and installed() is None:
        return CheckResult(
            "ok",
            "in-process stub broker: its queues live in the process that runs it, none here",
            {"queues": []},
        )
    stats = queue_stats(
        settings, timeout_ms=settings.health_timeout_ms, now_ms=int(now.timestamp() * 1000)
    )
    problems: list[str] = []
    statuses: list[Status] = []
    for s in stats:
        if s.paused:
            statuses.append("warning")
            problems.append(f"{s.name} is paused")
            continue
        if s.ready > settings.health_max_ready:
            statuses.append("unhealthy")
            problems.append(f"{s.name}: {s.ready} ready > {settings.health_max_ready}")
        if s.oldest_age_ms is not None and s.oldest_age_ms > settings.health_max_age_ms:
            statuses.append("unhealthy")
            problems.append(
                f"{s.name}: oldest ready {s.oldest_age_ms} ms > {settings.health_max_age_ms} ms"
            )
    detail = "; ".join(problems) if problems else f"{len(stats)} queue(s) within thresholds"
    return CheckResult(worst(statuses), detail, {"queues": [s.as_dict() for s in stats]})

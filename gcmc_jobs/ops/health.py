"""Health checks: is this deployment able to run its jobs, and has it?

:func:`check_health` runs every check in parallel, each bounded by
``settings.health_timeout_ms``, and returns a :class:`HealthReport`; a check that times out
or raises is ``unhealthy`` with the error in its detail. Statuses, worst last:
``ok`` < ``warning`` (look at it) < ``unhealthy`` (jobs are or will be lost or late).

============  =====================================================================================
 check         unhealthy when … (warning when …)
============  =====================================================================================
 broker        the broker does not answer
 redis         the stores' Redis does not answer, or its ``maxmemory-policy`` is not
               ``noeviction`` (an evicting Redis silently drops queued messages);
               (warning: persistence off, ``save ""`` and ``appendonly no``; CONFIG refused)
 database      ``SELECT 1`` fails
 workers       — (warning: no live worker: no heartbeat within ``broker_heartbeat_timeout_ms``)
 queues        a running queue has more than ``health_max_ready`` ready messages, or its oldest
               ready message is older than ``health_max_age_ms``; (warning: a queue is paused)
 dead_letters  — (warning: dead letters wait to be replayed or purged)
 daily_jobs    an active tenant's daily job has not succeeded for its due local date
               ``health_job_grace_ms`` after its scheduled time (``settings.job_times``)
============  =====================================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, text

from gcmc_jobs.db.models import DeadLetter, JobRun, JobRunStatus, Tenant
from gcmc_jobs.ops.queues import queue_stats, redis_client
from gcmc_jobs.settings import Settings

__all__ = [
    "ALL_CHECKS",
    "READINESS_CHECKS",
    "CheckResult",
    "HealthReport",
    "Status",
    "check_health",
]

Status = Literal["ok", "warning", "unhealthy"]
_RANK: dict[str, int] = {"ok": 0, "warning": 1, "unhealthy": 2}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: a status, a one-line reason, and its numbers."""

    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    """Every check's result, and the worst status among them."""

    status: Status
    checked_at: datetime
    checks: dict[str, CheckResult]

    @property
    def healthy(self) -> bool:
        """False only when some check is ``unhealthy`` (warnings are healthy)."""
        return self.status != "unhealthy"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "status": self.status,
            "checked_at": self.checked_at.isoformat(),
            "checks": {
                name: {"status": r.status, "detail": r.detail, **r.data}
                for name, r in self.checks.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)


def _worst(statuses: Iterable[str]) -> Status:
    worst: Status = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[worst]:
            worst = status  # type: ignore[assignment]
    return worst


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


# -- the checks -----------------------------------------------------------------------------


def _check_broker(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    url = settings.broker_url.get_secret_value()
    timeout_ms = settings.health_timeout_ms
    if _is_redis(url):
        client = redis_client(url, timeout_ms=timeout_ms)
        try:
            client.ping()
        finally:
            client.close()
        return CheckResult("ok", "Redis broker answers")
    if url.startswith(("amqp://", "amqps://")):
        import pika

        parameters = pika.URLParameters(url)
        parameters.socket_timeout = timeout_ms / 1000
        parameters.connection_attempts = 1
        pika.BlockingConnection(parameters).close()
        return CheckResult("ok", "RabbitMQ broker answers")
    return CheckResult("ok", "in-process stub broker")


def _check_redis(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    url = settings.store_redis_url
    if url is None:
        return CheckResult("warning", "no Redis: stores are in-process stubs (one process only)")
    client = redis_client(url, timeout_ms=settings.health_timeout_ms)
    try:
        client.ping()
        try:
            config = client.config_get("maxmemory-policy")
            config.update(client.config_get("save"))
            config.update(client.config_get("appendonly"))
        except Exception as exc:  # managed Redis often refuses CONFIG
            return CheckResult("warning", f"Redis answers, but CONFIG GET is refused: {exc}")
    finally:
        client.close()
    policy = config.get("maxmemory-policy", "")
    persistence = {"save": config.get("save", ""), "appendonly": config.get("appendonly", "")}
    data = {"maxmemory_policy": policy, **persistence}
    if policy != "noeviction":
        return CheckResult(
            "unhealthy",
            f"maxmemory-policy is {policy!r}: Redis may evict queued messages under memory "
            "pressure; set it to 'noeviction'",
            data,
        )
    if not persistence["save"] and persistence["appendonly"] != "yes":
        return CheckResult(
            "warning",
            'persistence is off (save "" and appendonly no): a restart loses every queued message',
            data,
        )
    return CheckResult("ok", "Redis answers, noeviction, persistence on", data)


def _check_database(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    assert engine is not None
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return CheckResult("ok", f"{engine.dialect.name} answers")


def _check_workers(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    url = settings.broker_url.get_secret_value()
    if not _is_redis(url):
        return CheckResult(
            "ok", "heartbeats exist on Redis only; see each queue's consumers", {"workers": []}
        )
    from gcmc_jobs.middleware.worker_registry import workers_key

    now_ms = int(now.timestamp() * 1000)
    client = redis_client(url, timeout_ms=settings.health_timeout_ms)
    try:
        beats = client.zrangebyscore(
            f"{settings.namespace}:__heartbeats__",
            now_ms - settings.broker_heartbeat_timeout_ms,
            "+inf",
            withscores=True,
        )
        registry = client.hgetall(workers_key(settings.namespace))
    finally:
        client.close()
    workers = []
    for raw_id, score in beats:
        entry = json.loads(registry.get(raw_id, b"{}"))
        workers.append(
            {
                "id": raw_id.decode(),
                "last_seen_ms_ago": max(0, now_ms - int(score)),
                "host": entry.get("host"),
                "pid": entry.get("pid"),
                "queues": entry.get("queues"),
            }
        )
    if not workers:
        return CheckResult(
            "warning",
            f"no live worker (no heartbeat in {settings.broker_heartbeat_timeout_ms} ms)",
            {"workers": []},
        )
    return CheckResult("ok", f"{len(workers)} live worker(s)", {"workers": workers})


def _check_queues(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    stats = queue_stats(
        settings, timeout_ms=settings.health_timeout_ms, now_ms=int(now.timestamp() * 1000)
    )
    problems, statuses = [], []
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
    status = _worst(statuses)
    detail = "; ".join(problems) if problems else f"{len(stats)} queue(s) within thresholds"
    return CheckResult(status, detail, {"queues": [s.as_dict() for s in stats]})


def _check_dead_letters(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    assert engine is not None
    with engine.connect() as connection:
        waiting = connection.execute(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.replayed_at.is_(None))
        ).scalar_one()
    if waiting:
        return CheckResult(
            "warning",
            f"{waiting} dead letter(s) wait to be replayed or purged",
            {"waiting": waiting},
        )
    return CheckResult("ok", "no dead letter waiting", {"waiting": 0})


def _due_date(now: datetime, zone: ZoneInfo, at: Any, grace: timedelta) -> date:
    """The latest local date whose run of a job at ``at`` should be done by ``now``."""
    local_now = now.astimezone(zone)
    today = local_now.date()
    due = datetime.combine(today, at, tzinfo=zone) + grace
    return today if local_now >= due else today - timedelta(days=1)


def _check_daily_jobs(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    assert engine is not None
    grace = timedelta(milliseconds=settings.health_job_grace_ms)
    with engine.connect() as connection:
        tenants = connection.execute(
            select(Tenant.id, Tenant.timezone).where(Tenant.is_active.is_(True))
        ).all()
        # The last run of each job per tenant, and the last successful one: two statements.
        last = _last_runs(connection)
        succeeded = {
            (r.job, r.tenant_id): r.local_date
            for r in connection.execute(
                select(
                    JobRun.job, JobRun.tenant_id, func.max(JobRun.local_date).label("local_date")
                )
                .where(JobRun.status == JobRunStatus.SUCCEEDED)
                .group_by(JobRun.job, JobRun.tenant_id)
            )
        }
    jobs: dict[str, list[dict[str, Any]]] = {}
    overdue = 0
    for job, at in settings.job_times.items():
        rows = jobs.setdefault(job, [])
        for tenant_id, timezone in tenants:
            due = _due_date(now, ZoneInfo(timezone), at, grace)
            done = succeeded.get((job, tenant_id))
            run = last.get((job, tenant_id))
            late = done is None or done < due
            overdue += late
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "last_run_date": run.local_date.isoformat() if run else None,
                    "last_run_status": str(run.status) if run else None,
                    "last_success_date": done.isoformat() if done else None,
                    "due_date": due.isoformat(),
                    "overdue": late,
                }
            )
    if overdue:
        return CheckResult("unhealthy", f"{overdue} daily run(s) overdue", {"jobs": jobs})
    return CheckResult(
        "ok", f"every daily job is up to date for {len(tenants)} tenant(s)", {"jobs": jobs}
    )


def _last_runs(connection: Any) -> dict[tuple[str, int], Any]:
    latest = (
        select(JobRun.job, JobRun.tenant_id, func.max(JobRun.local_date).label("d"))
        .group_by(JobRun.job, JobRun.tenant_id)
        .subquery()
    )
    rows = connection.execute(
        select(JobRun.job, JobRun.tenant_id, JobRun.local_date, JobRun.status).join(
            latest,
            (JobRun.job == latest.c.job)
            & (JobRun.tenant_id == latest.c.tenant_id)
            & (JobRun.local_date == latest.c.d),
        )
    )
    return {(r.job, r.tenant_id): r for r in rows}


Check = Callable[[Settings, Engine | None, datetime], CheckResult]

#: Every check of :func:`check_health`, by name.
ALL_CHECKS: dict[str, Check] = {
    "broker": _check_broker,
    "redis": _check_redis,
    "database": _check_database,
    "workers": _check_workers,
    "queues": _check_queues,
    "dead_letters": _check_dead_letters,
    "daily_jobs": _check_daily_jobs,
}
#: The quick checks behind ``/health/ready``: can this process reach what it needs.
READINESS_CHECKS = ("broker", "redis", "database")


def check_health(
    settings: Settings,
    *,
    engine: Engine | None = None,
    checks: Iterable[str] | None = None,
    now: datetime | None = None,
) -> HealthReport:
    """Run ``checks`` (default: all of :data:`ALL_CHECKS`) in parallel, each bounded by
    ``settings.health_timeout_ms`` (a slow check is reported unhealthy, not waited for).

    ``engine`` defaults to a new engine on ``settings.database_url`` (disposed after).
    """
    names = list(checks) if checks is not None else list(ALL_CHECKS)
    now = now or datetime.now(UTC)
    own_engine = engine is None
    if engine is None:
        from gcmc_jobs.db.engine import make_engine

        url = settings.database_url.get_secret_value()
        seconds = max(1, settings.health_timeout_ms // 1000)
        connect_args = {"connect_timeout": seconds} if url.startswith("postgresql") else {}
        engine = make_engine(url, connect_args=connect_args) if connect_args else make_engine(url)
    pool = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="gcmc-health")
    try:
        futures = {name: pool.submit(ALL_CHECKS[name], settings, engine, now) for name in names}
        deadline = time.monotonic() + settings.health_timeout_ms / 1000
        results: dict[str, CheckResult] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                results[name] = CheckResult(
                    "unhealthy", f"timed out after {settings.health_timeout_ms} ms"
                )
            except Exception as exc:
                results[name] = CheckResult("unhealthy", f"{type(exc).__name__}: {exc}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if own_engine:
            engine.dispose()
    return HealthReport(_worst(r.status for r in results.values()), now, results)

"""Run health checks: in parallel, each bounded by a timeout, into one :class:`HealthReport`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime

from sqlalchemy import Engine

from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.mapping import load_mapping
from gcmc_jobs.db.tables import bind, build_tables
from gcmc_jobs.ops.failures import explain
from gcmc_jobs.ops.health.registry import ALL_CHECKS, Check
from gcmc_jobs.ops.health.report import CheckResult, HealthReport, worst
from gcmc_jobs.settings import Settings

__all__ = ["check_health"]


def check_health(
    settings: Settings,
    *,
    engine: Engine | None = None,
    checks: Iterable[str] | None = None,
    now: datetime | None = None,
    registry: Mapping[str, Check] = ALL_CHECKS,
) -> HealthReport:
    """Run ``checks`` (default: every one of ``registry``, :data:`ALL_CHECKS`) in parallel,
    each bounded by ``settings.health_timeout_ms``: a check that times out or raises is
    reported ``unhealthy``, never waited for, with the error in its detail as
    :func:`~gcmc_jobs.ops.failures.explain` says it (the setting at fault named, secrets
    masked).

    ``now`` (aware; default: the current instant) is the instant every check judges by.
    ``engine`` defaults to a new engine on ``settings.database_url`` (disposed after), bound
    to the tables of the configured mapping as the runtime's is (``schema_mapping``,
    ``platform_tables``): the checks read them with
    :func:`~gcmc_jobs.db.tables.tables_of`.
    """
    names = list(checks) if checks is not None else list(registry)
    now = now or datetime.now(UTC)
    own_engine = engine is None
    if engine is None:
        engine = _engine(settings)
    pool = ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="gcmc-health")
    try:
        futures = {name: pool.submit(registry[name], settings, engine, now) for name in names}
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
                # One line naming the setting at fault, secrets masked.
                results[name] = CheckResult("unhealthy", explain(exc, settings).message)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if own_engine:
            engine.dispose()
    return HealthReport(worst(r.status for r in results.values()), now, results)


def _engine(settings: Settings) -> Engine:
    """An engine on ``settings.database_url`` that gives up connecting within the timeout,
    bound to the configured mapping's tables."""
    tables = build_tables(
        load_mapping(settings.schema_mapping), managed=settings.platform_tables == "managed"
    )
    url = settings.database_url.get_secret_value()
    seconds = max(1, settings.health_timeout_ms // 1000)
    if url.startswith("postgresql"):
        engine = make_engine(url, connect_args={"connect_timeout": seconds})
    else:
        engine = make_engine(url)
    bind(engine, tables)
    return engine

"""The health runner, apart from the checks: parallel, bounded, failures reported."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine

from gcmc_jobs.ops.health import ALL_CHECKS, READINESS_CHECKS, CheckResult, check_health
from gcmc_jobs.ops.health.registry import Check
from gcmc_jobs.settings import Settings

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, broker_url="stub://", health_timeout_ms=300)


def test_a_check_that_raises_or_hangs_is_unhealthy_and_the_others_are_kept(
    gcmc_db: Engine, gcmc_postgres_url: str
) -> None:
    release = threading.Event()

    def fine(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
        return CheckResult("warning", f"judged at {now.isoformat()}")

    def broken(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
        raise RuntimeError("boom")

    def hanging(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
        release.wait()
        return CheckResult("ok", "too late")

    registry: dict[str, Check] = {"fine": fine, "broken": broken, "hanging": hanging}
    try:
        report = check_health(
            _settings(gcmc_postgres_url), engine=gcmc_db, now=NOW, registry=registry
        )
    finally:
        release.set()

    assert list(report.checks) == ["fine", "broken", "hanging"]
    assert report.checks["fine"] == CheckResult("warning", f"judged at {NOW.isoformat()}")
    assert report.checks["broken"] == CheckResult("unhealthy", "RuntimeError: boom")
    assert report.checks["hanging"] == CheckResult("unhealthy", "timed out after 300 ms")
    assert (report.status, report.healthy, report.checked_at) == ("unhealthy", False, NOW)


def test_the_worst_status_is_the_reports_and_warnings_are_healthy(
    gcmc_db: Engine, gcmc_postgres_url: str
) -> None:
    def warn(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
        return CheckResult("warning", "look at it")

    def ok(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
        return CheckResult("ok", "fine")

    report = check_health(
        _settings(gcmc_postgres_url), engine=gcmc_db, registry={"ok": ok, "warn": warn}
    )
    assert (report.status, report.healthy) == ("warning", True)
    assert report.as_dict()["checks"]["warn"] == {"status": "warning", "detail": "look at it"}


def test_every_check_is_registered_and_readiness_is_a_subset() -> None:
    assert list(ALL_CHECKS) == [
        "broker",
        "redis",
        "database",
        "workers",
        "queues",
        "dead_letters",
        "daily_jobs",
        "mail_circuit",
    ]
    assert set(READINESS_CHECKS) <= set(ALL_CHECKS)

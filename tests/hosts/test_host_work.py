"""Host-defined work: actors on the package's broker, daily jobs in the run ledger."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, time

import dramatiq
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

import gcmc_jobs
from gcmc_jobs import brokers
from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.errors import ConfigurationError, DuplicateMessage
from gcmc_jobs.runtime import installed as installed_runtime
from gcmc_jobs.scheduling import (
    JOB_NAMES,
    due_runs,
    job_times,
    register_daily_job,
    run_for_tenant,
)
from gcmc_jobs.settings import Settings
from tests import factories as f

MODULE = "tests.hosts.registered"


def _host() -> object:
    return importlib.import_module(MODULE)


def test_a_host_actor_declared_before_configure_is_bound_by_it() -> None:
    host = _host()
    with gcmc_jobs.configured(Settings(broker_url="stub://")) as runtime:
        assert host.host_echo.broker is runtime.broker  # type: ignore[attr-defined]
        assert "host_tests" in runtime.broker.get_declared_queues()


def test_a_host_actor_declared_after_configure_gets_the_whole_stack(
    gcmc_broker: dramatiq.Broker, gcmc_join: Callable[..., None]
) -> None:
    # Given a host module imported after configure() (as the worker imports it)
    host = _host()
    echo = host.host_echo  # type: ignore[attr-defined]
    assert echo.broker is gcmc_broker

    # When it is sent twice with the same dedup key
    echo.send(n=1)
    with pytest.raises(DuplicateMessage):
        echo.send(n=1)
    gcmc_join()

    # Then it ran once (Deduplication is in its stack), under the test policy
    assert host.CALLS == [1]  # type: ignore[attr-defined]
    assert echo.options["max_retries"] == 1


def test_host_modules_are_imported_by_configure_and_name_the_setting_when_missing() -> None:
    settings = Settings(broker_url="stub://", host_modules=MODULE)  # type: ignore[arg-type]
    assert settings.host_modules == [MODULE]
    with gcmc_jobs.configured(settings):
        assert "host_nightly_count" in job_times(settings)
    before = installed_runtime()
    with (
        pytest.raises(ConfigurationError, match=r"GCMC_JOBS_HOST_MODULES.*no_such_module"),
        gcmc_jobs.configured(Settings(broker_url="stub://", host_modules=["no_such_module"])),
    ):
        pass
    # And a configure that failed leaves the process as it found it
    assert installed_runtime() is before
    assert refresh_compliance.broker is (
        before.broker if before is not None else brokers.unconfigured
    )


def test_a_registered_daily_job_is_due_and_runs_once_per_tenant_day(gcmc_db: Engine) -> None:
    _host()
    with session_scope(gcmc_db) as session:
        tenant = f.tenant(session, "Acme")
    now = datetime.now(UTC).replace(hour=12)
    times = job_times(Settings())

    assert times["host_nightly_count"] == time(0, 0)
    assert list(times)[: len(JOB_NAMES)] == list(JOB_NAMES)
    with session_scope(gcmc_db) as session:
        due = due_runs(session, now, times, jobs=["host_nightly_count"])
    assert [(d.job, d.tenant_id) for d in due] == [("host_nightly_count", tenant.id)]
    first = run_for_tenant(gcmc_db, "host_nightly_count", tenant.id, now=now)
    again = run_for_tenant(gcmc_db, "host_nightly_count", tenant.id, now=now)
    assert first.ran
    assert first.stats["tenant"] == tenant.id
    assert not again.ran


def test_a_daily_job_name_is_checked_when_registered() -> None:
    def job(ctx: object) -> dict[str, int]:
        return {}

    with pytest.raises(ValueError, match="gcmc-jobs' own"):
        register_daily_job("compliance_refresh", job, at="01:00")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower-case"):
        register_daily_job("Nightly Report", job, at="01:00")  # type: ignore[arg-type]
    _host()
    with pytest.raises(ValueError, match="already registered"):
        register_daily_job("host_nightly_count", job, at="01:00")  # type: ignore[arg-type]


def test_schedules_and_runs_show_the_hosts_daily_job(
    gcmc_sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", str(gcmc_sqlite_db.url))
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.setenv("GCMC_JOBS_HOST_MODULES", MODULE)
    monkeypatch.setenv("GCMC_JOBS_LOG_LEVEL", "WARNING")
    with session_scope(gcmc_sqlite_db) as session:
        tenant = f.tenant(session, "Acme")
    runner = CliRunner()

    schedules = runner.invoke(app, ["schedules", "--json"])
    ran = runner.invoke(app, ["run", "host_nightly_count", "--tenant", str(tenant.id)])
    runs = runner.invoke(app, ["runs", "--json"])

    assert schedules.exit_code == 0, schedules.output
    assert "host_nightly_count" in {row["job"] for row in json.loads(schedules.stdout)}
    assert ran.exit_code == 0, ran.output
    assert [(r["job"], r["status"]) for r in json.loads(runs.stdout)] == [
        ("host_nightly_count", "succeeded")
    ]

"""``gcmc-jobs demo``: runs from an empty directory, on SQLite or PostgreSQL, and leaves the
process as it found it."""

from __future__ import annotations

import os
from pathlib import Path

import dramatiq
import pytest
import structlog
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs import brokers as _broker
from gcmc_jobs import runtime as _runtime
from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.models import ComplianceScore, Tenant
from gcmc_jobs.demo import run_demo
from gcmc_jobs.demo.compliance import TenantSummary
from gcmc_jobs.errors import NotConfiguredError
from gcmc_jobs.settings import Settings


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and no GCMC_JOBS_* variable: a fresh machine."""
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _assert_process_left_unconfigured() -> None:
    assert _runtime.installed() is None
    assert refresh_compliance.broker is _broker.unconfigured
    with pytest.raises(NotConfiguredError):
        refresh_compliance.send(1)


def test_demo_runs_from_an_empty_directory_with_nothing_configured(no_settings: Path) -> None:
    structlog_before = structlog.get_config()

    result = CliRunner().invoke(app, ["demo"])

    assert result.exit_code == 0, result.output
    assert "Compliance scores (3 tenants" in result.output
    assert "demo finished" in result.output
    # The default database is a SQLite file in the working directory, now scored
    database = no_settings / "gcmc_jobs.sqlite3"
    assert database.exists()
    engine = make_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 3
        assert session.scalar(select(func.count()).select_from(ComplianceScore)) > 0
    engine.dispose()
    # and the process is left as it was found
    _assert_process_left_unconfigured()
    assert structlog.get_config() == structlog_before


def test_demo_reuses_its_data_and_reset_starts_over(no_settings: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(app, ["demo", "--tenants", "2", "--clients-per-tenant", "3"]).exit_code == 0
    )

    again = runner.invoke(app, ["demo"])
    assert again.exit_code == 0, again.output
    assert "using the 2 tenants already there" in again.output

    reset = runner.invoke(app, ["demo", "--reset", "--tenants", "1", "--clients-per-tenant", "3"])
    assert reset.exit_code == 0, reset.output
    assert "database reset" in reset.output
    assert "Compliance scores (1 tenants" in reset.output
    _assert_process_left_unconfigured()


def test_demo_on_postgresql_and_redis_scores_every_active_client(
    gcmc_db: Engine, gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    # Given the PostgreSQL test database and a real Redis broker
    settings = Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}_demo",
        email_url="memory://",
    )

    # When the compliance step of the demo runs
    ctx = run_demo(settings, tenants=2, clients_per_tenant=10, steps=["gcmc_jobs.demo.compliance"])

    # Then each tenant's summary matches the stored scores
    summaries: list[TenantSummary] = ctx.facts["compliance"]
    assert len(summaries) == 2
    with Session(gcmc_db) as session:
        for summary in summaries:
            scores = session.scalars(
                select(ComplianceScore.score).where(ComplianceScore.tenant_id == summary.tenant_id)
            ).all()
            assert summary.scored == len(scores) == summary.clients
            assert summary.low + summary.medium + summary.high == summary.clients
            assert summary.average_score == pytest.approx(sum(scores) / len(scores))
    _assert_process_left_unconfigured()


def test_demo_restores_a_host_applications_configuration(
    gcmc_broker: dramatiq.Broker, tmp_path: Path
) -> None:
    # Given a host process configured on its own broker
    host = _runtime.installed()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", broker_url="stub://")

    run_demo(settings, tenants=1, clients_per_tenant=2, steps=["gcmc_jobs.demo.compliance"])

    # Then its runtime and broker are back
    assert _runtime.installed() is host
    assert refresh_compliance.broker is gcmc_broker

"""``gcmc-jobs report`` and ``gcmc-jobs reports`` on SQLite with the in-process broker: the
chain runs in the command."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import Role
from gcmc_jobs.email.transports import memory
from gcmc_jobs.services.compliance import refresh_tenant
from tests import factories as f


@pytest.fixture
def tenant_id(gcmc_sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", str(gcmc_sqlite_db.url))
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.setenv("GCMC_JOBS_EMAIL_URL", "memory://")
    monkeypatch.setenv("GCMC_JOBS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "200")
    with session_scope(gcmc_sqlite_db) as session:
        t = f.tenant(session, "Lisbon Books", timezone="Europe/Lisbon")
        f.member(session, t, Role.ADMIN, name="Ana Admin")
        f.filing(session, f.client(session, t), due=date(2026, 10, 1))
        refresh_tenant(session, t.id, today=date(2026, 10, 31))
        return int(t.id)


def test_report_makes_the_report_in_the_command_and_reports_lists_it(tenant_id: int) -> None:
    memory.outbox.clear()
    runner = CliRunner()

    made = runner.invoke(app, ["report", str(tenant_id), "--period", "2026-10", "--json"])
    assert made.exit_code == 0, made.output
    document = json.loads(made.output)
    assert document["status"] == "requested"
    assert document["report"]["status"] == "completed"
    assert len(document["report"]["files"]) == 2
    assert len(memory.outbox) == 1

    again = runner.invoke(app, ["report", str(tenant_id), "--period", "2026-10"])
    assert again.exit_code == 0, again.output
    assert "already_completed" in again.output
    assert "--force" in again.output

    listed = runner.invoke(app, ["reports", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["tenant_id"], r["period"]) for r in json.loads(listed.output)] == [
        (tenant_id, "2026-10")
    ]


def test_report_refuses_a_bad_period_or_tenant_and_sends_nothing(tenant_id: int) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["report", str(tenant_id), "--period", "October"])
    assert bad.exit_code == 1
    assert "expected a month as YYYY-MM" in bad.output
    unknown = runner.invoke(app, ["report", "999", "--period", "2026-10"])
    assert unknown.exit_code == 1
    assert "no tenant with id 999" in unknown.output
    listed = runner.invoke(app, ["reports", "--json"])
    assert json.loads(listed.output) == []

"""Issue 11, item 10: a new operator can see when the scheduler will act, and ``schedules``
shows a run that is due but has not run yet as such, not as a future run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import Engine
from structlog.testing import capture_logs
from typer.testing import CliRunner

from gcmc_jobs.actors.schedule import log_scheduler_plan, next_tick_minute
from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.runtime import current
from gcmc_jobs.scheduling.clock import tenant_time
from tests import factories as f


def test_the_next_working_tick_is_the_next_minute_divisible_by_the_period() -> None:
    assert next_tick_minute(datetime(2026, 6, 1, 5, 32, 10, tzinfo=UTC), 5) == datetime(
        2026, 6, 1, 5, 35, tzinfo=UTC
    )
    assert next_tick_minute(datetime(2026, 6, 1, 5, 35, tzinfo=UTC), 5) == datetime(
        2026, 6, 1, 5, 35, tzinfo=UTC
    )
    assert next_tick_minute(datetime(2026, 6, 1, 23, 46, tzinfo=UTC), 15) == datetime(
        2026, 6, 2, 0, 0, tzinfo=UTC
    )


def test_the_plan_is_logged_with_the_next_working_tick(gcmc_broker: dramatiq.Broker) -> None:
    with capture_logs() as logs:
        log_scheduler_plan(current(), datetime(2026, 6, 1, 5, 32, 10, tzinfo=UTC))
    [event] = [e for e in logs if e["event"] == "schedule.next_tick"]
    assert event["at"] == "2026-06-01T05:35:00+00:00"
    assert event["every_minutes"] == 5


def test_loading_the_worker_module_logs_when_the_scheduler_next_acts(tmp_path: Path) -> None:
    # What `periodiq gcmc_jobs.worker` and `dramatiq gcmc_jobs.worker` import first.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GCMC_JOBS_BROKER_URL": "stub://",
        "GCMC_JOBS_DATABASE_URL": f"sqlite:///{tmp_path / 'gcmc.sqlite3'}",
        "GCMC_JOBS_LOG_FORMAT": "json",
        "GCMC_JOBS_SCHEDULER_TICK_MINUTES": "15",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import gcmc_jobs.worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    [plan] = [e for e in events if e["event"] == "schedule.next_tick"]
    assert plan["every_minutes"] == 15
    assert datetime.fromisoformat(plan["at"]).minute % 15 == 0


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, gcmc_postgres_url: str) -> None:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.setenv("GCMC_JOBS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "250")


def test_schedules_shows_a_past_run_of_today_as_due_not_as_next(
    cli_env: None, gcmc_db: Engine
) -> None:
    # Given a UTC tenant at 05:32, whose 02:xx compliance refresh (its minutes into the
    # spread window) has not run yet
    with session_scope(gcmc_db) as session:
        tenant_id = f.tenant(session, "Utc").id
    now = "2026-06-01T05:32:00+00:00"
    own = tenant_time(time(2), tenant_id, timedelta(minutes=30))

    result = CliRunner().invoke(app, ["schedules", "--json", "--now", now])
    assert result.exit_code == 0, result.output
    rows = {row["job"]: row for row in json.loads(result.stdout)}
    assert rows["compliance_refresh"]["waiting"] is True
    assert rows["compliance_refresh"]["next_run_utc"] == f"2026-06-01T{own:%H:%M}:00+00:00"
    assert rows["document_expiry_emails"]["waiting"] is False

    table = CliRunner().invoke(app, ["schedules", "--now", now])
    assert table.exit_code == 0, table.output
    [refresh] = [line for line in table.stdout.splitlines() if "compliance_refresh" in line]
    assert "due, not run yet" in refresh
    [emails] = [line for line in table.stdout.splitlines() if "document_expiry_emails" in line]
    assert "due, not run yet" not in emails
    # the 02:xx refresh and the 03:xx retention
    assert "2 due, waiting for the next tick" in table.stdout

"""``gcmc-jobs run | tick | schedules | runs`` through Typer's runner, on SQLite."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import EmailLog, JobRun, Role
from gcmc_jobs.scheduling.clock import spread_minutes, tenant_time
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.settings import DEFAULT_JOB_TIMES
from tests import factories as f

#: The default spread window (GCMC_JOBS_SCHEDULE_SPREAD_MINUTES): each tenant runs each job a
#: fixed number of minutes after its time.
SPREAD = timedelta(minutes=30)


def _at(day: date, at: time, tenant_id: int, zone: str) -> datetime:
    """The instant tenant ``tenant_id`` runs the job at ``at`` on ``day`` (no DST there)."""
    own = tenant_time(at, tenant_id, SPREAD)
    return datetime.combine(day, own, tzinfo=ZoneInfo(zone))


@pytest.fixture
def world(gcmc_sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A Tokyo tenant and a UTC tenant on a SQLite file the CLI is pointed at."""
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", str(gcmc_sqlite_db.url))
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.setenv("GCMC_JOBS_EMAIL_URL", "memory://")
    monkeypatch.setenv("GCMC_JOBS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "200")
    today = utcnow().date()
    with session_scope(gcmc_sqlite_db) as session:
        tokyo = f.tenant(session, "Tokyo", timezone="Asia/Tokyo")
        utc = f.tenant(session, "Utc")
        for tenant in (tokyo, utc):
            f.member(session, tenant, Role.OWNER)
            client = f.client(session, tenant)
            # Expires in 30 days in both tenants' today (whatever the hour in Tokyo).
            f.document(session, client, expiry=today + timedelta(days=30))
            f.document(session, client, expiry=today + timedelta(days=31))
        return {"tokyo": tokyo.id, "utc": utc.id}


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_run_runs_a_job_for_every_tenant_once(
    world: dict[str, int], gcmc_sqlite_db: Engine
) -> None:
    code, output = _invoke("run", "compliance_refresh")
    assert code == 0, output
    assert "compliance_refresh: 2 ran" in output
    code, output = _invoke("run", "compliance_refresh", "--tenant", str(world["utc"]))
    assert code == 0, output
    assert "already_done" in output
    code, output = _invoke("run", "compliance_refresh", "--tenant", str(world["utc"]), "--force")
    assert " ran " in output
    with session_scope(gcmc_sqlite_db) as session:
        assert len(session.scalars(select(JobRun)).all()) == 2


def test_run_on_a_date_sends_the_digests_through_an_in_process_worker(
    world: dict[str, int], gcmc_sqlite_db: Engine
) -> None:
    day = (utcnow().date()).isoformat()
    code, output = _invoke(
        "run", "document_expiry_emails", "--tenant", str(world["utc"]), "--date", day
    )
    assert code == 0, output
    assert "digests_queued=1" in output
    with session_scope(gcmc_sqlite_db) as session:
        [log] = session.scalars(select(EmailLog)).all()
        [run] = session.scalars(select(JobRun)).all()
    assert log.kind == "document_expiry_warning"
    assert run.local_date.isoformat() == day


def test_bad_input_gets_a_clear_error(world: dict[str, int]) -> None:
    code, output = _invoke("run", "compliance_refreshh")
    assert code == 1
    assert "unknown job 'compliance_refreshh'" in output
    assert "filing_reminders" in output
    code, output = _invoke("run", "compliance_refresh", "--tenant", "999")
    assert (code, "no tenant with id 999" in output) == (1, True)
    code, output = _invoke("run", "compliance_refresh", "--date", "2026-02-30")
    assert code == 2
    assert "YYYY-MM-DD" in output
    code, output = _invoke("tick", "--now", "tomorrow")
    assert code == 2
    assert "ISO 8601" in output
    code, output = _invoke("run", "compliance_refresh", "--enqueue")
    assert code == 1
    assert "--enqueue needs" in output
    code, output = _invoke("runs", "--job", "nope")
    assert code == 1


def test_tick_runs_what_is_due_at_the_given_instant(world: dict[str, int]) -> None:
    # 22:30 UTC is 07:30 the next day in Tokyo: its 02:00, 03:30 (retention), 06:00 (monthly
    # report) and 07:00 jobs are due there (each at most 29 minutes into the spread window),
    # and every job (7) of the UTC tenant is due.
    day = utcnow().date()
    code, output = _invoke("tick", "--now", f"{day.isoformat()}T22:30:00")
    assert code == 0, output
    assert "11 due" in output
    code, output = _invoke("tick", "--now", f"{day.isoformat()}T22:35:00+00:00")
    assert "0 due" in output


def test_schedules_shows_the_next_local_and_utc_run(world: dict[str, int]) -> None:
    code, output = _invoke(
        "schedules", "--tenant", str(world["tokyo"]), "--now", "2026-06-01T00:00:00Z"
    )
    assert code == 0, output
    # 07:00 in Tokyo on June 1 (plus the tenant's minutes into the spread window) is 22:xx
    # UTC on May 31; at 00:00 UTC (09:00 JST) it is due.
    emails = _at(date(2026, 6, 1), time(7), world["tokyo"], "Asia/Tokyo")
    assert emails.strftime("%Y-%m-%d %H:%M JST") in output
    assert emails.astimezone(UTC).strftime("%Y-%m-%d %H:%M") in output
    assert f"+{spread_minutes(world['tokyo'], time(7), SPREAD)}" in output
    assert "GCMC_JOBS_SCHEDULE_SPREAD_MINUTES" in output  # the caption says what +min is
    assert "2026-06-02 02:" not in output  # today's 02:xx has not run: still due


def test_runs_lists_the_ledger_with_filters(world: dict[str, int]) -> None:
    _invoke("run", "compliance_refresh")
    _invoke("run", "filing_reminders", "--tenant", str(world["tokyo"]))
    code, output = _invoke("runs", "--job", "filing_reminders")
    assert code == 0, output
    assert "1 run(s)" in output
    code, output = _invoke("runs", "--tenant", str(world["utc"]), "--since", "2000-01-01")
    assert "1 run(s)" in output
    assert "compliance_refresh" in output


def test_schedules_json_gives_each_jobs_due_instant_and_todays_status(
    world: dict[str, int],
) -> None:
    _invoke("run", "compliance_refresh", "--tenant", str(world["utc"]), "--date", "2026-06-01")
    code, output = _invoke(
        "schedules", "--json", "--tenant", str(world["utc"]), "--now", "2026-06-01T12:00:00Z"
    )
    assert code == 0, output
    rows = {row["job"]: row for row in json.loads(output)}
    assert set(rows) == set(DEFAULT_JOB_TIMES)
    # Ran today: tomorrow's 02:xx is next; the 09:xx one has not run: due, waiting for a tick
    utc = world["utc"]
    refresh = _at(date(2026, 6, 2), time(2), utc, "UTC")
    assert rows["compliance_refresh"]["next_run_utc"] == refresh.isoformat()
    assert rows["compliance_refresh"]["offset_minutes"] == refresh.minute
    assert rows["compliance_refresh"]["today_status"] == "succeeded"
    reminders = _at(date(2026, 6, 1), time(9), utc, "UTC")
    assert rows["filing_reminders"]["next_run_utc"] == reminders.isoformat()
    assert rows["filing_reminders"]["today_status"] is None
    code, output = _invoke("schedules", "--tenant", "999")
    assert (code, "no tenant with id 999" in output) == (1, True)


def test_runs_json_pages_through_the_ledger(world: dict[str, int]) -> None:
    for day in ("2026-06-01", "2026-06-02", "2026-06-03"):
        _invoke("run", "filing_reminders", "--tenant", str(world["utc"]), "--date", day)
    code, output = _invoke("runs", "--json", "--limit", "2", "--offset", "1")
    assert code == 0, output
    assert [r["local_date"] for r in json.loads(output)] == ["2026-06-02", "2026-06-01"]

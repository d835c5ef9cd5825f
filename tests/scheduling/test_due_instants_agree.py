"""On DST days, the scheduler, ``gcmc-jobs schedules``, ``/api/schedules`` and the health
check's overdue test all agree on when each daily run is due: at the job's time, and at each
tenant's own time when the tenants are spread over a window."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dramatiq
import pytest
import time_machine
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.cli import app as cli
from gcmc_jobs.http import create_app
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.scheduling.clock import due_instant, spread_minutes, tenant_time
from gcmc_jobs.scheduling.tick import tick
from gcmc_jobs.settings import Settings
from tests import factories as f

TOKEN = "agree-token"
GRACE = timedelta(hours=2)
SECOND = timedelta(seconds=1)

#: Times inside the skipped or repeated hour of both zones (01:30 is New York's repeated
#: half hour; 02:00 and 02:30 Paris's repeated and both zones' skipped ones) and around it.
JOB_TIMES = {
    "compliance_refresh": time(1, 30),
    "document_expiry_emails": time(2, 0),
    "document_expiry_notifications": time(2, 30),
    "filing_reminder_emails": time(3, 0),
    "filing_reminders": time(3, 30),
    "retention": time(4, 0),
    "monthly_report": time(4, 30),  # after the changed hours, to check every job
}

#: What the scheduler does, written out for the times inside the changed hours: a skipped
#: time is due when the gap ends, a repeated one at its first occurrence.
EXPECTED = {
    ("Europe/Paris", date(2026, 3, 29)): {  # 02:00 CET -> 03:00 CEST (01:00Z)
        "compliance_refresh": datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        "document_expiry_emails": datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        "document_expiry_notifications": datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # not 01:30Z
        "filing_reminder_emails": datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    },
    ("Europe/Paris", date(2026, 10, 25)): {  # 03:00 CEST -> 02:00 CET (01:00Z)
        "document_expiry_emails": datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        "document_expiry_notifications": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        "filing_reminder_emails": datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
    },
    ("America/New_York", date(2026, 3, 8)): {  # 02:00 EST -> 03:00 EDT (07:00Z)
        "compliance_refresh": datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
        "document_expiry_notifications": datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        "filing_reminders": datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
    },
    ("America/New_York", date(2026, 11, 1)): {  # 02:00 EDT -> 01:00 EST (06:00Z)
        "compliance_refresh": datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # first 01:30
        "document_expiry_emails": datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
    },
}


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


@pytest.mark.parametrize("spread", [0, 45], ids=lambda v: f"spread{v}")
@pytest.mark.parametrize(("zone", "day"), list(EXPECTED), ids=lambda v: str(v))
def test_scheduler_cli_api_and_health_agree_on_every_due_instant(
    zone: str,
    day: date,
    spread: int,
    gcmc_settings: Settings,
    gcmc_broker: dramatiq.Broker,
    gcmc_db: Engine,
    gcmc_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a tenant in `zone`, jobs at times around its DST change, and no run yet
    tenant_id = f.tenant(gcmc_session, zone, timezone=zone).id
    gcmc_session.commit()
    settings = gcmc_settings.model_copy(
        update={
            "job_times": JOB_TIMES,
            "admin_token": SecretStr(TOKEN),
            "health_job_grace_ms": int(GRACE.total_seconds() * 1000),
            "schedule_spread_minutes": spread,
        }
    )
    window = timedelta(minutes=spread)
    # As of one minute into the tenant's local day (before every job's time)
    start = datetime.combine(day, time(0, 1), tzinfo=ZoneInfo(zone)).astimezone(UTC)

    # What /api/schedules announces
    api = TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"})
    with time_machine.travel(start, tick=False):
        response = api.get("/api/schedules")
    assert response.status_code == 200, response.text
    from_api = {
        row["job"]: _utc(row["next_run_utc"])
        for row in response.json()
        if row["tenant_id"] == tenant_id
    }

    # What `gcmc-jobs schedules` announces
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", settings.database_url.get_secret_value())
    times = {job: at.isoformat() for job, at in JOB_TIMES.items()}
    monkeypatch.setenv("GCMC_JOBS_JOB_TIMES", json.dumps(times))
    monkeypatch.setenv("GCMC_JOBS_SCHEDULE_SPREAD_MINUTES", str(spread))
    result = CliRunner().invoke(cli, ["schedules", "--json", "--now", start.isoformat()])
    assert result.exit_code == 0, result.output
    from_cli = {
        row["job"]: _utc(row["next_run_utc"])
        for row in json.loads(result.output)
        if row["tenant_id"] == tenant_id
    }

    # The API and the command line say the same; without a spread, the instants written out
    # above; with one, those of the tenant's own time, some minutes into the window
    assert from_api == from_cli
    assert set(from_api) == set(JOB_TIMES)
    if not spread:
        for job, expected in EXPECTED[(zone, day)].items():
            assert from_api[job] == expected, job
    for job, at in JOB_TIMES.items():
        own, minutes = tenant_time(at, tenant_id, window), spread_minutes(tenant_id, at, window)
        assert 0 <= minutes < max(spread, 1), job
        assert (own.hour - at.hour) * 60 + own.minute - at.minute == minutes, job
        assert from_api[job] == due_instant(day, own, ZoneInfo(zone)), job

    for job, announced in from_api.items():
        # The scheduler's tick enqueues the run from exactly that instant on
        def due_at(now: datetime, job: str = job) -> list[datetime]:
            found = tick(
                gcmc_db,
                gcmc_broker,
                now=now,
                job_times=JOB_TIMES,
                make_message=run_daily_job.message_with_options,
                spread=window,
            ).due
            return [run.scheduled_for for run in found if run.job == job]

        assert due_at(announced - SECOND) == [], job
        assert due_at(announced) == [announced], job

        # The health check calls it overdue exactly `grace` after that instant
        def health_row(now: datetime, job: str = job) -> dict[str, object]:
            report = check_health(settings, engine=gcmc_db, checks=["daily_jobs"], now=now)
            [row] = report.checks["daily_jobs"].data["jobs"][job]
            return row  # type: ignore[no-any-return]

        before = health_row(announced + GRACE - SECOND)
        assert before["due_date"] == (day - timedelta(days=1)).isoformat(), job
        after = health_row(announced + GRACE)
        assert (after["due_date"], after["overdue"]) == (day.isoformat(), True), job
        assert _utc(str(after["due_at"])) == announced, job

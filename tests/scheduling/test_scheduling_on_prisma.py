"""The scheduler's queries on Prisma-shaped tables (text ids, camelCase, enum types): the
due runs, the ledger reads and manual triggers answer as on the gcmc preset, in the same
number of statements."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.cli import app
from gcmc_jobs.db.enums import JobRunStatus
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import Tables
from gcmc_jobs.errors import UnknownTenant
from gcmc_jobs.scheduling.due_runs import scan_due_runs
from gcmc_jobs.scheduling.ledger_view import job_statuses, list_runs, next_runs
from gcmc_jobs.scheduling.run_messages import trigger_runs
from gcmc_jobs.settings import DEFAULT_JOB_TIMES
from tests.support.external_platform import prisma_platform
from tests.support.statements import recorded_statements

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TODAY = date(2026, 6, 1)


@pytest.fixture
def prisma(gcmc_postgres_url: str) -> Iterator[tuple[Engine, Tables]]:
    """Prisma-shaped tables with three tenants (text ids; one in a timezone that does not
    exist), two known to the scheduler for a week, and one succeeded run."""
    with prisma_platform(gcmc_postgres_url) as (engine, t):
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(t.tenants),
                [
                    {"id": "ten-a", "name": "Acme", "timezone": "UTC"},
                    {"id": "ten-b", "name": "Bento", "timezone": "Asia/Tokyo"},
                    {"id": "ten-x", "name": "Mars", "timezone": "Mars/Olympus"},
                ],
            )
            # The scheduler has known both usable tenants for a week
            connection.execute(
                insert(t.scheduled_tenants),
                [
                    {"tenant_id": tenant, "first_seen_at": NOW - timedelta(days=7)}
                    for tenant in ("ten-a", "ten-b")
                ],
            )
            connection.execute(
                insert(t.job_runs).values(
                    job="compliance_refresh",
                    tenant_id="ten-a",
                    local_date=TODAY,
                    status=JobRunStatus.SUCCEEDED,
                    stats={},
                )
            )
        yield engine, t


def test_due_runs_name_text_ids_and_the_tenant_with_a_bad_timezone(
    prisma: tuple[Engine, Tables],
) -> None:
    engine, _ = prisma
    with Session(engine) as session:
        scan = scan_due_runs(session, NOW, DEFAULT_JOB_TIMES)
    due = {(run.job, run.tenant_id) for run in scan.runs}
    # 12:00 UTC is past every job's time in both tenants' day; ten-a's refresh already ran
    assert ("compliance_refresh", "ten-a") not in due
    assert {tenant for _, tenant in due} == {"ten-a", "ten-b"}
    assert len(due) == 2 * len(DEFAULT_JOB_TIMES) - 1
    assert [(p.tenant_id, p.tenant_name) for p in scan.problems] == [("ten-x", "Mars")]


def test_the_ledger_reads_answer_with_text_ids_in_constantrecorded_statements(
    prisma: tuple[Engine, Tables], gcmc_broker: dramatiq.Broker
) -> None:
    engine, _ = prisma
    with recorded_statements(engine) as seen, Session(engine) as session:
        [run] = list_runs(session)
    assert (run.tenant_id, run.status, len(seen)) == ("ten-a", JobRunStatus.SUCCEEDED, 1)

    with recorded_statements(engine) as seen, Session(engine) as session:
        rows = next_runs(session, DEFAULT_JOB_TIMES, now=NOW, tenant_id="ten-a")
    assert len(seen) == 2
    refresh = next(r for r in rows if r.job == "compliance_refresh")
    assert refresh.today_status is JobRunStatus.SUCCEEDED
    assert refresh.local_date == TODAY + timedelta(days=1)  # today's ran: tomorrow's is next

    with recorded_statements(engine) as seen, Session(engine) as session:
        statuses = job_statuses(session, DEFAULT_JOB_TIMES, now=NOW, grace=timedelta(hours=1))
    assert len(seen) == 3
    by_key = {(s.job, s.tenant_id): s for s in statuses}
    assert not by_key[("compliance_refresh", "ten-a")].overdue
    assert by_key[("compliance_refresh", "ten-b")].overdue
    assert by_key[("compliance_refresh", "ten-b")].scheduled_since == NOW - timedelta(days=7)
    assert by_key[("compliance_refresh", "ten-x")].problem is not None

    with recorded_statements(engine) as seen, Session(engine) as session:
        result = trigger_runs(
            session,
            gcmc_broker,
            run_daily_job.message_with_options,
            "filing_reminders",
            ["ten-b", "ten-a"],
            now=NOW,
        )
    assert len(seen) == 1
    assert [(r.tenant_id, r.dedup_key) for r in result.runs] == [
        ("ten-a", "job_run:filing_reminders:ten-a:2026-06-01"),
        ("ten-b", "job_run:filing_reminders:ten-b:2026-06-01"),
    ]
    assert result.enqueued == 2

    with Session(engine) as session, pytest.raises(UnknownTenant, match="no tenant with id nope"):
        trigger_runs(
            session,
            gcmc_broker,
            run_daily_job.message_with_options,
            "filing_reminders",
            ["ten-a", "nope"],
            now=NOW,
        )


def test_the_commands_take_a_text_tenant_id_on_prisma_tables(
    prisma: tuple[Engine, Tables], gcmc_postgres_url: str, tmp_path: Path
) -> None:
    _, t = prisma
    mapping = tmp_path / "mapping.json"
    mapping.write_text(t.mapping.model_dump_json(by_alias=True))
    env = {
        "GCMC_JOBS_DATABASE_URL": gcmc_postgres_url,
        "GCMC_JOBS_SCHEMA_MAPPING": str(mapping),
        "GCMC_JOBS_PLATFORM_TABLES": "external",
        "GCMC_JOBS_BROKER_URL": "stub://",
        "GCMC_JOBS_EMAIL_URL": "memory://",
        "GCMC_JOBS_LOG_LEVEL": "WARNING",
    }
    runner = CliRunner()
    ran = runner.invoke(
        app, ["run", "compliance_refresh", "--tenant", "ten-b", "--date", "2026-06-01"], env=env
    )
    assert ran.exit_code == 0, ran.output
    listed = runner.invoke(app, ["runs", "--tenant", "ten-b", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(r["tenant_id"], r["status"]) for r in json.loads(listed.stdout)] == [
        ("ten-b", "succeeded")
    ]
    unknown = runner.invoke(app, ["run", "compliance_refresh", "--tenant", "nope"], env=env)
    assert unknown.exit_code != 0
    assert "no tenant with id nope" in unknown.output


def test_a_tenant_id_that_is_not_a_number_is_refused_on_integer_ids(
    gcmc_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_db.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["runs", "--tenant", "ten-a"])
    assert result.exit_code != 0
    assert "'ten-a': tenant ids are integers here" in result.output

"""A day's run is overdue only when it was possible: the scheduler knew the tenant (issue 11,
item 13: a fresh deployment was unhealthy for hours over runs that could never have run)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import dramatiq
import pytest
import time_machine
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.cli import app as cli
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import JobRun, JobRunStatus
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.scheduling.ledger_view import job_statuses
from gcmc_jobs.scheduling.seen_tenants import record_seen_tenants
from gcmc_jobs.scheduling.tick import tick
from gcmc_jobs.settings import DEFAULT_JOB_TIMES, Settings
from gcmc_jobs.testing import DEFAULT_POSTGRES_URL
from tests import factories as f
from tests.support.statements import recorded_statements

GRACE = timedelta(hours=2)
DAY = date(2026, 6, 10)
_message = run_daily_job.message_with_options


def _at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def _status(session: Session, job_times: dict[str, time], now: datetime) -> tuple[date, bool]:
    [status] = job_statuses(session, job_times, now=now, grace=GRACE)
    return status.due_date, status.overdue  # type: ignore[return-value]


def _run(session: Session, tenant_id: int, job: str, day: date, status: str) -> None:
    session.add(
        JobRun(job=job, tenant_id=tenant_id, local_date=day, status=JobRunStatus(status), stats={})
    )
    session.commit()


def _seen(engine: Engine) -> dict[int, datetime]:
    seen = tables_of(engine).scheduled_tenants
    with engine.connect() as connection:
        return dict(connection.execute(select(seen.c.tenant_id, seen.c.first_seen_at)).all())


def test_the_tick_records_each_active_tenant_once_at_its_first_sighting(
    gcmc_db: Engine, gcmc_session: Session, gcmc_broker: dramatiq.Broker
) -> None:
    # Given an active and an inactive tenant
    first = f.tenant(gcmc_session, "first").id
    f.tenant(gcmc_session, "asleep", active=False)
    gcmc_session.commit()
    times = {"compliance_refresh": time(2)}

    # When the scheduler ticks, then a new tenant appears and it ticks again
    tick(gcmc_db, gcmc_broker, now=_at(10), job_times=times, make_message=_message)
    later = f.tenant(gcmc_session, "later").id
    gcmc_session.commit()
    tick(gcmc_db, gcmc_broker, now=_at(10, 5), job_times=times, make_message=_message)

    # Then each active tenant is recorded at the tick that first saw it, and only then
    assert _seen(gcmc_db) == {first: _at(10), later: _at(10, 5)}


def test_recording_the_sightings_is_one_statement_for_3_or_60_tenants(
    gcmc_db: Engine, gcmc_session: Session
) -> None:
    counts = []
    for batch, now in ((3, _at(10)), (57, _at(11))):
        for n in range(batch):
            f.tenant(gcmc_session, f"t{now.hour}-{n}")
        gcmc_session.commit()
        with recorded_statements(gcmc_db) as seen, Session(gcmc_db) as session, session.begin():
            new = record_seen_tenants(session, now)
        counts.append((len(seen), new))
    assert counts == [(1, 3), (1, 57)]
    assert len(_seen(gcmc_db)) == 60


def test_a_tenant_first_seen_today_is_not_overdue_for_yesterday(
    gcmc_db: Engine, gcmc_session: Session, gcmc_broker: dramatiq.Broker
) -> None:
    # Given a job at 23:00 UTC and a tenant that the scheduler first saw today at 10:00
    times = {"compliance_refresh": time(23)}
    f.tenant(gcmc_session)
    gcmc_session.commit()
    tick(gcmc_db, gcmc_broker, now=_at(10), job_times=times, make_message=_message)

    # Then at 10:30 yesterday's run (the latest due one) is not overdue: it was never possible
    assert _status(gcmc_session, times, _at(10, 30)) == (DAY - timedelta(days=1), False)

    # But today's, missed, is overdue two hours after its time (23:00)
    tomorrow = DAY + timedelta(days=1)
    assert _status(gcmc_session, times, _at(1, 0, tomorrow)) == (DAY, True)


def test_a_day_before_the_installation_is_not_overdue_and_a_missed_one_after_it_is(
    gcmc_db: Engine, gcmc_session: Session, gcmc_broker: dramatiq.Broker
) -> None:
    # Given tenants of the platform long before the package; its first tick at 00:30 (the
    # installation), then the scheduler down; a job at 02:00
    times = {"compliance_refresh": time(2)}
    f.tenant(gcmc_session)
    gcmc_session.commit()
    tick(gcmc_db, gcmc_broker, now=_at(0, 30), job_times=times, make_message=_message)

    # At 03:00 the latest due run is yesterday's, before the installation: not overdue
    assert _status(gcmc_session, times, _at(3)) == (DAY - timedelta(days=1), False)
    # At 04:00 today's run, possible (installed, tenant known) and missed, is overdue
    assert _status(gcmc_session, times, _at(4)) == (DAY, True)


def test_a_run_of_the_first_day_that_failed_is_overdue_grace_after_the_first_sighting(
    gcmc_db: Engine, gcmc_session: Session, gcmc_broker: dramatiq.Broker
) -> None:
    # Given a tenant first seen at 10:00, whose 02:00 job the first tick ran late, and failed
    times = {"compliance_refresh": time(2)}
    tenant = f.tenant(gcmc_session).id
    gcmc_session.commit()
    tick(gcmc_db, gcmc_broker, now=_at(10), job_times=times, make_message=_message)
    _run(gcmc_session, tenant, "compliance_refresh", DAY, "failed")

    # Then it is not overdue within the grace after the sighting, and overdue after it
    assert _status(gcmc_session, times, _at(11, 59)) == (DAY, False)
    assert _status(gcmc_session, times, _at(12)) == (DAY, True)


def test_a_run_missed_while_the_scheduler_was_down_is_still_overdue(
    gcmc_db: Engine, gcmc_session: Session
) -> None:
    # Given a tenant the scheduler has known for days, whose runs stopped two days ago
    times = {"compliance_refresh": time(2)}
    tenant = f.tenant(gcmc_session).id
    record_seen_tenants(gcmc_session, _at(9, 0, DAY - timedelta(days=5)))
    _run(gcmc_session, tenant, "compliance_refresh", DAY - timedelta(days=2), "succeeded")

    [status] = job_statuses(gcmc_session, times, now=_at(12), grace=GRACE)

    assert (status.due_date, status.overdue) == (DAY, True)
    assert status.last_success_date == DAY - timedelta(days=2)
    assert status.scheduled_since == _at(9, 0, DAY - timedelta(days=5))


def test_health_names_the_tenants_the_scheduler_has_not_seen_yet(
    gcmc_db: Engine, gcmc_session: Session, gcmc_settings: Settings
) -> None:
    f.tenant(gcmc_session)
    gcmc_session.commit()

    report = check_health(gcmc_settings, engine=gcmc_db, checks=["daily_jobs"], now=_at(12))

    check = report.checks["daily_jobs"]
    assert check.status == "ok"
    assert "1 not seen by the scheduler's tick yet" in check.detail
    assert {row["scheduled_since"] for rows in check.data["jobs"].values() for row in rows} == {
        None
    }


def test_health_check_exits_0_on_day_one_and_1_when_a_real_run_is_missed(
    gcmc_db: Engine,
    gcmc_session: Session,
    gcmc_settings: Settings,
    gcmc_broker: dramatiq.Broker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a fresh deployment: the platform's tenants, the package installed this morning
    # and its scheduler's first tick at 10:00 (it enqueues the day's runs; none has run yet)
    for name in ("a", "b"):
        f.tenant(gcmc_session, name)
    gcmc_session.commit()
    tick(gcmc_db, gcmc_broker, now=_at(10), job_times=DEFAULT_JOB_TIMES, make_message=_message)
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_settings.database_url.get_secret_value())
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")

    def health(now: datetime) -> tuple[int, dict[str, object]]:
        with time_machine.travel(now, tick=False):
            result = CliRunner().invoke(cli, ["health", "--check", "daily_jobs"])
        return result.exit_code, json.loads(result.output)

    # Then `health --check daily_jobs` is a readiness probe on day one: exit 0 at 10:05
    code, report = health(_at(10, 5))
    assert code == 0, report

    # And exits 1 the next day at noon, when the day's runs were all missed
    code, report = health(_at(12, 0, DAY + timedelta(days=1)))
    assert code == 1, report
    assert "overdue" in json.dumps(report)


@pytest.fixture
def fresh_database() -> Iterator[Engine]:
    """An empty PostgreSQL database of this test's own, dropped afterwards."""
    server = os.environ.get("GCMC_JOBS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    name = f"gcmc_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        admin.url.set(database=name).render_as_string(hide_password=False), pool_size=1
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_upgrade_records_tenants_with_runs_as_seen_at_their_first_run(
    fresh_database: Engine,
) -> None:
    # Given a deployment at migration 0003 with a ledger history for one of two tenants
    upgrade(fresh_database, "0003")
    t = tables_of(fresh_database)
    with fresh_database.begin() as connection:
        ids = [
            connection.execute(insert(t.tenants).values(name=n).returning(t.tenants.c.id)).scalar()
            for n in ("old", "new")
        ]
        connection.execute(
            insert(t.job_runs),
            [
                {
                    "job": "compliance_refresh",
                    "tenant_id": ids[0],
                    "local_date": DAY - timedelta(days=n),
                    "scheduled_for": _at(2, 0, DAY - timedelta(days=n)),
                    "status": JobRunStatus.SUCCEEDED,
                    "stats": {},
                }
                for n in (1, 30)
            ],
        )

    # When it is upgraded
    upgrade(fresh_database)

    # Then the tenant with runs is known since its first run; the other awaits the tick
    assert _seen(fresh_database) == {ids[0]: _at(2, 0, DAY - timedelta(days=30))}


def test_sightings_work_on_sqlite_too(gcmc_sqlite_db: Engine) -> None:
    # Given a tenant on SQLite (the demo's database), seen at 10:00 by the first tick
    times = {"compliance_refresh": time(23)}
    with Session(gcmc_sqlite_db) as session:
        f.tenant(session)
        session.commit()
        assert record_seen_tenants(session, _at(10)) == 1
        assert record_seen_tenants(session, _at(11)) == 0
        session.commit()

        # Then yesterday's run is not overdue, and the sighting reads back as an aware instant
        [status] = job_statuses(session, times, now=_at(10, 30), grace=GRACE)
    assert (status.overdue, status.scheduled_since) == (False, _at(10))

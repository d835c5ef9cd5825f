"""The ledger-driven schedule: each daily job once per tenant per local day, at local time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import EmailLog, JobRun, JobRunStatus, Notification, Role
from gcmc_jobs.scheduling.clock import due_instant
from gcmc_jobs.scheduling.due_runs import due_runs
from gcmc_jobs.scheduling.ledger import Claim
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.settings import DEFAULT_JOB_TIMES
from tests import factories as f
from tests.scheduling.conftest import simulate, tick_inline

ZONES = ("Asia/Tokyo", "America/New_York", "Europe/London", "UTC")


def _runs(engine: Engine) -> list[JobRun]:
    with session_scope(engine) as session:
        return list(session.scalars(select(JobRun).order_by(JobRun.id)))


def test_each_tenant_gets_each_job_once_at_its_local_time(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    # Given tenants in four timezones
    tenants = {zone: f.tenant(gcmc_session, zone, timezone=zone).id for zone in ZONES}
    gcmc_session.commit()

    # When the scheduler ticks every 30 minutes across their June 2 (from 01:00 in Tokyo)
    ran = simulate(
        gcmc_db,
        datetime(2026, 6, 1, 16, tzinfo=UTC),
        datetime(2026, 6, 2, 14, tzinfo=UTC),
        every=timedelta(minutes=30),
    )

    # Then every job ran once per tenant per local date, at its local time
    per_day = Counter((r.result.job, r.result.tenant_id, r.result.local_date) for r in ran)
    assert set(per_day.values()) == {1}
    for zone, tenant_id in tenants.items():
        for job, at in DEFAULT_JOB_TIMES.items():
            times = [
                r.at.astimezone(ZoneInfo(zone))
                for r in ran
                if r.result.job == job
                and r.result.tenant_id == tenant_id
                and r.result.local_date == date(2026, 6, 2)  # a whole local day in every zone
            ]
            assert [t.time() for t in times] == [at], (zone, job)
    assert all(run.status is JobRunStatus.SUCCEEDED for run in _runs(gcmc_db))


def _dst_day(gcmc_session: Session, gcmc_db: Engine, zone: str, day: date) -> None:
    tenant_id = f.tenant(gcmc_session, zone, timezone=zone).id
    gcmc_session.commit()
    # Job times inside the skipped or repeated hour of both zones, and ordinary ones.
    job_times = {
        **DEFAULT_JOB_TIMES,
        "compliance_refresh": time(2, 30),
        "document_expiry_emails": time(1, 30),
    }
    # From an hour before the local day starts to 10:00 local: every job time, and the
    # whole changed hour, with ticks every 15 minutes.
    zone_info = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=zone_info).astimezone(UTC) - timedelta(hours=1)
    end = datetime.combine(day, time(10), tzinfo=zone_info).astimezone(UTC)
    ran = simulate(gcmc_db, start, end, job_times=job_times)
    on_day = [r for r in ran if r.result.local_date == day and r.result.tenant_id == tenant_id]
    assert Counter(r.result.job for r in on_day) == dict.fromkeys(DEFAULT_JOB_TIMES, 1)
    for r in on_day:
        # At the first tick at or after its due instant (gap end / first occurrence)
        assert r.at == due_instant(day, job_times[r.result.job], zone_info), r.result.job


def test_paris_spring_forward_runs_every_job_once(gcmc_session: Session, gcmc_db: Engine) -> None:
    _dst_day(gcmc_session, gcmc_db, "Europe/Paris", date(2026, 3, 29))


def test_paris_fall_back_runs_every_job_once(gcmc_session: Session, gcmc_db: Engine) -> None:
    _dst_day(gcmc_session, gcmc_db, "Europe/Paris", date(2026, 10, 25))


def test_new_york_spring_forward_runs_every_job_once(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    _dst_day(gcmc_session, gcmc_db, "America/New_York", date(2026, 3, 8))


def test_new_york_fall_back_runs_every_job_once(gcmc_session: Session, gcmc_db: Engine) -> None:
    _dst_day(gcmc_session, gcmc_db, "America/New_York", date(2026, 11, 1))


def test_a_skipped_time_runs_at_the_first_tick_after_the_gap(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    f.tenant(gcmc_session, "paris", timezone="Europe/Paris")
    gcmc_session.commit()
    job_times = {**DEFAULT_JOB_TIMES, "compliance_refresh": time(2, 30)}
    ran = simulate(
        gcmc_db,
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 2, tzinfo=UTC),
        job_times=job_times,
    )
    [refresh] = [r for r in ran if r.result.job == "compliance_refresh"]
    # 01:00 UTC is 03:00 CEST, the first instant after the missing 02:00-03:00 hour.
    assert refresh.at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_a_repeated_time_runs_at_its_first_occurrence_only(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    f.tenant(gcmc_session, "paris", timezone="Europe/Paris")
    gcmc_session.commit()
    job_times = {**DEFAULT_JOB_TIMES, "compliance_refresh": time(2, 30)}
    ran = simulate(
        gcmc_db,
        datetime(2026, 10, 24, 22, tzinfo=UTC),
        datetime(2026, 10, 25, 3, tzinfo=UTC),
        job_times=job_times,
    )
    refreshes = [r for r in ran if r.result.job == "compliance_refresh"]
    # 00:30 UTC is the first 02:30 (CEST); the second (01:30 UTC, CET) does not run again.
    assert [r.at for r in refreshes] == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


def test_downtime_catches_up_todays_runs_once(gcmc_session: Session, gcmc_db: Engine) -> None:
    # Given a New York tenant and a scheduler down from 06:00 to 10:00 local (EDT = UTC-4)
    f.tenant(gcmc_session, "ny", timezone="America/New_York")
    gcmc_session.commit()
    day = date(2026, 6, 1)
    down = (datetime(2026, 6, 1, 10, tzinfo=UTC), datetime(2026, 6, 1, 14, tzinfo=UTC))

    # When it ticks through that day
    ran = simulate(
        gcmc_db,
        datetime(2026, 6, 1, 4, tzinfo=UTC),
        datetime(2026, 6, 2, 4, tzinfo=UTC),
        down=down,
    )

    # Then every job ran once; those due during the downtime at the first tick after it
    assert Counter(r.result.job for r in ran) == dict.fromkeys(DEFAULT_JOB_TIMES, 1)
    at = {r.result.job: r.at for r in ran if r.result.local_date == day}
    assert at["compliance_refresh"] == datetime(2026, 6, 1, 6, tzinfo=UTC)  # 02:00 EDT
    for job in ("document_expiry_emails", "filing_reminder_emails", "filing_reminders"):
        assert at[job] == down[1]


def test_older_missed_days_are_not_replayed_and_the_skip_is_logged(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    tenant = f.tenant(gcmc_session, "utc")
    gcmc_session.commit()
    tick_inline(gcmc_db, datetime(2026, 6, 1, 12, tzinfo=UTC))
    # The scheduler is down for three whole days, then ticks on June 5 at noon
    with capture_logs() as logs:
        ran = tick_inline(gcmc_db, datetime(2026, 6, 5, 12, tzinfo=UTC))
    assert {r.result.local_date for r in ran} == {date(2026, 6, 5)}
    assert len(ran) == len(DEFAULT_JOB_TIMES)
    skipped = [e for e in logs if e["event"] == "schedule.days_skipped"]
    assert {e["job"] for e in skipped} == set(DEFAULT_JOB_TIMES)
    assert {(e["tenant_id"], e["skipped"]) for e in skipped} == {(tenant.id, 3)}


def test_inactive_tenants_and_bad_timezones_are_not_scheduled(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    f.tenant(gcmc_session, "gone", active=False)
    f.tenant(gcmc_session, "typo", timezone="Europe/Pariss")
    ok = f.tenant(gcmc_session, "ok")
    gcmc_session.commit()
    with capture_logs() as logs, session_scope(gcmc_db) as session:
        due = due_runs(session, datetime(2026, 6, 1, 12, tzinfo=UTC), DEFAULT_JOB_TIMES)
    assert {run.tenant_id for run in due} == {ok.id}
    assert any(e["event"] == "schedule.bad_timezone" for e in logs)


def test_two_racing_ticks_produce_one_run(gcmc_session: Session, gcmc_db: Engine) -> None:
    # Given one tenant with a due job, and two schedulers ticking at the same instant
    tenant = f.tenant(gcmc_session, "race")
    gcmc_session.commit()
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    barrier = threading.Barrier(2)
    results: list[list[object]] = []

    def scheduler() -> None:
        with session_scope(gcmc_db) as session:
            due = due_runs(session, now, DEFAULT_JOB_TIMES, jobs=["compliance_refresh"])
        barrier.wait()
        results.append(
            [
                run_for_tenant(gcmc_db, r.job, r.tenant_id, local_date=r.local_date, now=now).claim
                for r in due
            ]
        )

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then both saw it due, and exactly one ran it
    claims = sorted(claim for result in results for claim in result)  # type: ignore[type-var]
    assert len(claims) == 2
    assert claims.count(Claim.CLAIMED) == 1
    assert [(r.job, r.tenant_id) for r in _runs(gcmc_db)] == [("compliance_refresh", tenant.id)]


def test_two_scheduler_processes_ticking_at_once_run_each_job_once(
    gcmc_session: Session, gcmc_db: Engine, gcmc_postgres_url: str, tmp_path: Path
) -> None:
    # Given tenants with alerts to send, and two `gcmc-jobs tick` processes started together
    for zone in ("UTC", "Asia/Tokyo"):
        tenant = f.tenant(gcmc_session, zone, timezone=zone)
        f.member(gcmc_session, tenant, Role.OWNER)
        client = f.client(gcmc_session, tenant)
        f.document(gcmc_session, client, expiry=date(2026, 6, 4))
        f.filing(gcmc_session, client, due=date(2026, 6, 1))
    gcmc_session.commit()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")},
        "GCMC_JOBS_DATABASE_URL": gcmc_postgres_url,
        "GCMC_JOBS_BROKER_URL": "stub://",
        "GCMC_JOBS_EMAIL_URL": f"file://{tmp_path}",
        "GCMC_JOBS_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "gcmc-jobs"), "tick", "--now"]
    processes = [
        subprocess.Popen([*command, "2026-06-01T12:00:00Z"], env=env, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs

    # Then each (job, tenant) ran once, and each alert exists once
    runs = _runs(gcmc_db)
    assert len(runs) == 2 * len(DEFAULT_JOB_TIMES)
    assert len({(r.job, r.tenant_id, r.local_date) for r in runs}) == len(runs)
    assert {r.status for r in runs} == {JobRunStatus.SUCCEEDED}
    with session_scope(gcmc_db) as session:
        keys = session.scalars(select(Notification.dedup_key)).all()
        logs = session.scalars(select(EmailLog.dedup_key)).all()
    assert len(keys) == len(set(keys)) == 4  # expiry + due-soon, per tenant
    digests = [key for key in logs if key.startswith("digest:")]
    assert len(digests) == len(set(digests)) == 4  # a document and a filing digest per tenant
    # 2026-06-01 is a first of the month: May's report, mailed once to each tenant's owner
    reports = [key for key in logs if key.startswith("report:")]
    assert len(reports) == len(set(reports)) == 2

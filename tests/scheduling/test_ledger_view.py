"""The ledger read model: runs, next runs, overdue runs and triggers, in constant statements."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.db.models import JobRun, JobRunStatus, Tenant
from gcmc_jobs.errors import UnknownTenant
from gcmc_jobs.scheduling.ledger_view import (
    INACTIVE,
    job_statuses,
    list_runs,
    next_runs,
    overdue_runs,
)
from gcmc_jobs.scheduling.run_messages import trigger_runs
from gcmc_jobs.scheduling.seen_tenants import record_seen_tenants
from gcmc_jobs.settings import DEFAULT_JOB_TIMES
from tests import factories as f
from tests.support.statements import recorded_statements

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
GRACE = timedelta(hours=2)


def _add_tenants(session: Session, count: int, zones: tuple[str, ...]) -> list[int]:
    """``count`` tenants over ``zones``, each with a succeeded and a failed run."""
    ids = []
    for n in range(count):
        tenant = f.tenant(session, f"t{n}", timezone=zones[n % len(zones)])
        for job, status in (("compliance_refresh", "succeeded"), ("filing_reminders", "failed")):
            session.add(
                JobRun(
                    job=job,
                    tenant_id=tenant.id,
                    local_date=date(2026, 6, 1),
                    status=JobRunStatus(status),
                    stats={},
                )
            )
        ids.append(tenant.id)
    session.commit()
    return ids


def test_every_read_issues_the_same_statements_for_3_or_60_tenants(
    gcmc_session: Session, gcmc_db: Engine, gcmc_broker: dramatiq.Broker
) -> None:
    zones = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
    reads: dict[str, Callable[[Session], Any]] = {
        "list_runs": lambda s: list_runs(s, limit=1000),
        "next_runs": lambda s: next_runs(s, DEFAULT_JOB_TIMES, now=NOW),
        "job_statuses": lambda s: job_statuses(s, DEFAULT_JOB_TIMES, now=NOW, grace=GRACE),
        "trigger_runs": lambda s: trigger_runs(
            s, gcmc_broker, run_daily_job.message_with_options, "filing_reminders", now=NOW
        ),
    }
    counts: dict[str, list[int]] = {name: [] for name in reads}
    for tenants in (3, 57):  # 3, then 60 in all
        _add_tenants(gcmc_session, tenants, zones)
        for name, read in reads.items():
            with recorded_statements(gcmc_db) as seen, Session(gcmc_db) as session:
                assert read(session)
            counts[name].append(len(seen))
    assert counts == {
        "list_runs": [1, 1],
        "next_runs": [2, 2],
        "job_statuses": [3, 3],
        "trigger_runs": [1, 1],
    }


def test_runs_are_newest_first_filtered_and_paged(gcmc_session: Session) -> None:
    tenant = f.tenant(gcmc_session)
    other = f.tenant(gcmc_session, "other")
    for day in range(1, 6):
        for job in ("compliance_refresh", "filing_reminders"):
            gcmc_session.add(
                JobRun(
                    job=job,
                    tenant_id=tenant.id,
                    local_date=date(2026, 6, day),
                    status=JobRunStatus.SUCCEEDED,
                    stats={"day": day},
                )
            )
    gcmc_session.add(
        JobRun(
            job="compliance_refresh",
            tenant_id=other.id,
            local_date=date(2026, 6, 9),
            status=JobRunStatus.FAILED,
            stats={},
            error="boom",
        )
    )
    gcmc_session.commit()

    mine = list_runs(gcmc_session, job="compliance_refresh", tenant_id=tenant.id)
    assert [r.local_date.day for r in mine] == [5, 4, 3, 2, 1]
    page = list_runs(gcmc_session, job="compliance_refresh", tenant_id=tenant.id, limit=2, offset=2)
    assert [r.local_date.day for r in page] == [3, 2]
    since = list_runs(gcmc_session, tenant_id=tenant.id, since=date(2026, 6, 4))
    assert {(r.job, r.local_date.day) for r in since} == {
        (job, day) for job in ("compliance_refresh", "filing_reminders") for day in (4, 5)
    }
    [latest] = list_runs(gcmc_session, limit=1)
    assert (latest.tenant_id, latest.error, latest.as_dict()["status"]) == (
        other.id,
        "boom",
        "failed",
    )


def test_the_next_run_is_today_until_the_ledger_has_its_row_then_tomorrow(
    gcmc_session: Session,
) -> None:
    # Given a UTC tenant at 12:00 whose 02:00 job has not run, and whose 09:00 job has
    tenant = f.tenant(gcmc_session)
    gcmc_session.add(
        JobRun(
            job="filing_reminders",
            tenant_id=tenant.id,
            local_date=date(2026, 6, 1),
            status=JobRunStatus.FAILED,
            stats={},
        )
    )
    gcmc_session.commit()
    rows = {r.job: r for r in next_runs(gcmc_session, DEFAULT_JOB_TIMES, now=NOW)}

    # Then the 02:00 job is due now (today's instant, in the past, waiting for the tick)
    assert rows["compliance_refresh"].due_at == datetime(2026, 6, 1, 2, tzinfo=UTC)
    assert rows["compliance_refresh"].today_status is None
    # The 09:00 job has a row today (failed: its retries run it, not the tick): tomorrow
    assert rows["filing_reminders"].due_at == datetime(2026, 6, 2, 9, tzinfo=UTC)
    assert rows["filing_reminders"].local_date == date(2026, 6, 2)
    assert rows["filing_reminders"].today_status is JobRunStatus.FAILED


def test_an_unknown_timezone_or_inactive_tenant_has_no_next_run(gcmc_session: Session) -> None:
    typo = f.tenant(gcmc_session, "typo", timezone="Europe/Pariss")
    gone = f.tenant(gcmc_session, "gone", active=False)
    gcmc_session.commit()

    [row, *_] = next_runs(gcmc_session, DEFAULT_JOB_TIMES, now=NOW)
    assert (row.tenant_id, row.due_at) == (typo.id, None)
    assert "unknown timezone 'Europe/Pariss'" in str(row.problem)
    assert {r.tenant_id for r in next_runs(gcmc_session, DEFAULT_JOB_TIMES, now=NOW)} == {typo.id}
    [inactive, *_] = next_runs(gcmc_session, DEFAULT_JOB_TIMES, now=NOW, tenant_id=gone.id)
    assert (inactive.due_at, inactive.problem) == (None, INACTIVE)
    with pytest.raises(UnknownTenant, match="no tenant with id 999"):
        next_runs(gcmc_session, DEFAULT_JOB_TIMES, now=NOW, tenant_id=999)

    # The health check's view: the scheduler never runs the typo tenant, so it is overdue
    [overdue] = overdue_runs(gcmc_session, {"compliance_refresh": time(2)}, now=NOW, grace=GRACE)
    assert (overdue.tenant_id, overdue.due_date) == (typo.id, None)


def test_a_late_evening_run_is_overdue_only_its_grace_after_its_due_instant(
    gcmc_session: Session,
) -> None:
    # Given a job at 23:30 UTC whose run of May 31 succeeded, and a 2 h grace
    tenant = f.tenant(gcmc_session)
    record_seen_tenants(gcmc_session, datetime(2026, 5, 1, tzinfo=UTC))
    gcmc_session.add(
        JobRun(
            job="compliance_refresh",
            tenant_id=tenant.id,
            local_date=date(2026, 5, 31),
            status=JobRunStatus.SUCCEEDED,
            stats={},
        )
    )
    gcmc_session.commit()
    late = {"compliance_refresh": time(23, 30)}

    # At 01:00 on June 2, June 1's run (due 23:30) is within its grace: not overdue yet
    [early] = job_statuses(gcmc_session, late, now=datetime(2026, 6, 2, 1, tzinfo=UTC), grace=GRACE)
    assert (early.due_date, early.overdue) == (date(2026, 5, 31), False)

    # At 01:30 it is overdue
    [due] = job_statuses(
        gcmc_session, late, now=datetime(2026, 6, 2, 1, 30, tzinfo=UTC), grace=GRACE
    )
    assert (due.due_date, due.overdue) == (date(2026, 6, 1), True)
    assert due.due_at == datetime(2026, 6, 1, 23, 30, tzinfo=UTC)


def test_a_trigger_for_an_unknown_tenant_enqueues_nothing(
    gcmc_session: Session, gcmc_broker: dramatiq.Broker
) -> None:
    tenant = f.tenant(gcmc_session)
    gcmc_session.commit()
    with pytest.raises(UnknownTenant, match="no tenant with id 424242"):
        trigger_runs(
            gcmc_session,
            gcmc_broker,
            run_daily_job.message_with_options,
            "filing_reminders",
            [tenant.id, 424242],
            now=NOW,
        )
    assert all(q.qsize() == 0 for q in gcmc_broker.queues.values())
    assert gcmc_session.get(Tenant, tenant.id) is not None

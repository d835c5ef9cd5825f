"""The ledger around one run: claimed once, failures retried, forced re-runs, stats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import JobRun, JobRunStatus, Notification, Role
from gcmc_jobs.errors import InvalidPayload, UnknownJob
from gcmc_jobs.scheduling.jobs import JOB_NAMES, SentDigests
from gcmc_jobs.scheduling.ledger import Claim
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.services.digests import Digest
from gcmc_jobs.services.retention import RULES
from tests import factories as f
from tests.support.statements import recorded_statements

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TODAY = date(2026, 6, 1)


def _run(engine: Engine) -> JobRun:
    with session_scope(engine) as session:
        return session.scalars(select(JobRun)).one()


@pytest.fixture
def tenant_id(gcmc_session: Session) -> int:
    tenant = f.tenant(gcmc_session)
    f.member(gcmc_session, tenant, Role.OWNER)
    client = f.client(gcmc_session, tenant)
    f.document(gcmc_session, client, expiry=TODAY + timedelta(days=30))
    f.document(gcmc_session, client, expiry=TODAY + timedelta(days=3))
    gcmc_session.commit()
    return tenant.id


def test_a_run_records_its_stats_and_duration(gcmc_db: Engine, tenant_id: int) -> None:
    result = run_for_tenant(gcmc_db, "document_expiry_notifications", tenant_id, now=NOW)
    assert result.ran
    run = _run(gcmc_db)
    assert run.status is JobRunStatus.SUCCEEDED
    assert (run.local_date, run.started_at) == (TODAY, NOW)
    assert run.finished_at is not None
    assert run.finished_at >= NOW
    assert run.stats["tenants"] == 1
    assert run.stats["notifications_created"] == 1
    assert run.stats["skipped_duplicates"] == 0
    assert run.stats["duration_ms"] >= 0
    # And the notification is stamped with the run's clock, not the wall clock
    with session_scope(gcmc_db) as session:
        assert session.scalars(select(Notification.created_at)).one() == NOW


def test_a_succeeded_run_is_not_repeated_unless_forced(gcmc_db: Engine, tenant_id: int) -> None:
    job = "document_expiry_notifications"
    assert run_for_tenant(gcmc_db, job, tenant_id, now=NOW).claim is Claim.CLAIMED
    assert run_for_tenant(gcmc_db, job, tenant_id, now=NOW).claim is Claim.ALREADY_DONE
    forced = run_for_tenant(gcmc_db, job, tenant_id, now=NOW, force=True)
    # A forced re-run runs, and still creates no duplicate notification
    assert forced.claim is Claim.CLAIMED
    assert forced.stats["notifications_created"] == 0
    assert forced.stats["skipped_duplicates"] == 1
    with session_scope(gcmc_db) as session:
        assert len(session.scalars(select(Notification)).all()) == 1


def test_a_failed_run_is_retried_by_the_next_attempt(gcmc_db: Engine, tenant_id: int) -> None:
    def broken(found: Sequence[Digest]) -> SentDigests:
        raise ConnectionError("redis went away")

    def working(found: Sequence[Digest]) -> SentDigests:
        return SentDigests(queued=len(found), duplicates=0)

    # Given a run whose work fails
    with pytest.raises(ConnectionError):
        run_for_tenant(gcmc_db, "document_expiry_emails", tenant_id, now=NOW, send_digests=broken)
    failed = _run(gcmc_db)
    assert failed.status is JobRunStatus.FAILED
    assert failed.error == "ConnectionError: redis went away"

    # When the next attempt comes, it claims the failed run and completes it
    retry = run_for_tenant(
        gcmc_db, "document_expiry_emails", tenant_id, now=NOW, send_digests=working
    )
    assert retry.claim is Claim.CLAIMED
    assert retry.stats["digests_queued"] == 1
    assert retry.stats["items"] == 2
    assert _run(gcmc_db).status is JobRunStatus.SUCCEEDED


def test_a_running_run_is_left_alone_until_stale(gcmc_db: Engine, tenant_id: int) -> None:
    with session_scope(gcmc_db) as session:
        session.add(
            JobRun(
                job="compliance_refresh",
                tenant_id=tenant_id,
                local_date=TODAY,
                status=JobRunStatus.RUNNING,
                started_at=NOW - timedelta(minutes=1),
                stats={},
            )
        )
    busy = run_for_tenant(gcmc_db, "compliance_refresh", tenant_id, now=NOW, force=True)
    assert busy.claim is Claim.RUNNING_ELSEWHERE
    # Its worker died: after 15 minutes the run is taken over
    with session_scope(gcmc_db) as session:
        session.execute(update(JobRun).values(started_at=NOW - timedelta(minutes=16)))
    assert run_for_tenant(gcmc_db, "compliance_refresh", tenant_id, now=NOW).ran


def test_unknown_jobs_and_tenants_are_refused_before_anything_is_written(
    gcmc_db: Engine, tenant_id: int
) -> None:
    with pytest.raises(UnknownJob, match="known jobs: compliance_refresh"):
        run_for_tenant(gcmc_db, "compliance_refreshh", tenant_id, now=NOW)
    with pytest.raises(InvalidPayload, match="no tenant with id 999"):
        run_for_tenant(gcmc_db, "compliance_refresh", 999, now=NOW)
    with pytest.raises(InvalidPayload, match="no tenant"):
        run_for_tenant(gcmc_db, "compliance_refresh", 999, local_date=TODAY, now=NOW)
    with session_scope(gcmc_db) as session:
        assert session.scalars(select(JobRun)).all() == []


def test_every_job_runs_on_sqlite_too(gcmc_sqlite_db: Engine) -> None:
    with session_scope(gcmc_sqlite_db) as session:
        tenant = f.tenant(session, timezone="Asia/Tokyo")
        f.member(session, tenant, Role.MANAGER)
        client = f.client(session, tenant)
        f.document(session, client, expiry=TODAY + timedelta(days=7))
        f.filing(session, client, due=TODAY + timedelta(days=7))
        f.filing(session, client, due=TODAY - timedelta(days=3))
        tenant_id = tenant.id
    sent: list[Digest] = []

    def collect(found: Sequence[Digest]) -> SentDigests:
        sent.extend(found)
        return SentDigests(queued=len(found), duplicates=0)

    for job in JOB_NAMES:
        for _ in range(2):
            run_for_tenant(
                gcmc_sqlite_db, job, tenant_id, local_date=TODAY, now=NOW, send_digests=collect
            )
    with session_scope(gcmc_sqlite_db) as session:
        kinds = sorted(session.scalars(select(Notification.kind)))
        runs = session.scalars(select(JobRun)).all()
    assert kinds == ["document_expiry", "filing_due_soon", "filing_overdue"]
    assert [d.kind for d in sent] == ["document_expiry_warning", "filing_reminder"]
    assert {r.status for r in runs} == {JobRunStatus.SUCCEEDED}
    assert len(runs) == len(JOB_NAMES)


def test_a_whole_run_issues_the_same_statements_for_any_number_of_clients(
    gcmc_session: Session, gcmc_db: Engine
) -> None:
    sizes = {}
    for clients in (2, 40):
        tenant = f.tenant(gcmc_session, f"t{clients}")
        people = [f.member(gcmc_session, tenant, Role.MANAGER) for _ in range(3)]
        for n in range(clients):
            client = f.client(gcmc_session, tenant, assigned=people[n % 3])
            f.document(gcmc_session, client, expiry=TODAY + timedelta(days=7))
            f.filing(gcmc_session, client, due=TODAY + timedelta(days=3))
        sizes[clients] = tenant.id
    gcmc_session.commit()

    def collect(found: Sequence[Digest]) -> SentDigests:
        return SentDigests(queued=len(found), duplicates=0)

    for job in JOB_NAMES:
        counts = []
        for tenant_id in sizes.values():
            with recorded_statements(gcmc_db) as seen:
                run_for_tenant(gcmc_db, job, tenant_id, now=NOW, send_digests=collect)
            counts.append(len(seen))
        # The retention job deletes batch by batch: one statement per rule when nothing has
        # expired, whatever the clients (the ledger's three besides).
        bound = 3 + len(RULES) if job == "retention" else 8
        assert counts[0] == counts[1] <= bound, (job, counts)

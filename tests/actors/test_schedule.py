"""The scheduler actors end to end: tick → per-tenant runs → digest emails, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dramatiq
import pytest
from sqlalchemy import Engine, select

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors import run_daily_job, scheduler_tick
from gcmc_jobs.actors.schedule import is_tick_minute
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import Document, EmailLog, JobRun, JobRunStatus, Notification, Role
from gcmc_jobs.email.transports import memory
from gcmc_jobs.runtime import current
from gcmc_jobs.scheduling.tick import TickResult, tick
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.settings import DEFAULT_JOB_TIMES
from tests import factories as f

MAKE = run_daily_job.message_with_options


def _drain(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    for queue in (queues.SCHEDULED, queues.EMAIL, queues.SCHEDULED, queues.EMAIL):
        broker.join(queue)
    worker.join()


@pytest.fixture
def busy_owner(gcmc_db: Engine) -> tuple[int, str, date]:
    """A UTC tenant whose owner has 12 documents hitting warning days today (real today:
    the email actor validates dates against nothing, but the tick uses real instants)."""
    today = utcnow().date()
    with session_scope(gcmc_db) as session:
        tenant = f.tenant(session, "Busy")
        owner = f.member(session, tenant, Role.OWNER)
        f.member(session, tenant, Role.VIEWER)
        clients = [f.client(session, tenant) for _ in range(4)]
        for n in range(12):
            expiry = today + timedelta(days=(30, 14, 7, 3, 1)[n % 5])
            f.document(session, clients[n % 4], expiry=expiry)
        return tenant.id, owner.email, today


def test_a_tick_runs_each_job_once_and_mails_one_digest_listing_all_twelve_documents(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, busy_owner: tuple[int, str, date]
) -> None:
    today = busy_owner[2]
    memory.outbox.clear()
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=23)

    # When two ticks run before any worker picks their messages up
    first = tick(gcmc_db, gcmc_broker, now=now, job_times=DEFAULT_JOB_TIMES, make_message=MAKE)
    second = tick(gcmc_db, gcmc_broker, now=now, job_times=DEFAULT_JOB_TIMES, make_message=MAKE)
    worker = dramatiq.Worker(gcmc_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        _drain(gcmc_broker, worker)
        _check_once_then_force(gcmc_broker, worker, gcmc_db, busy_owner, first, second)
    finally:
        worker.stop()


def _check_once_then_force(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    busy_owner: tuple[int, str, date],
    first: TickResult,
    second: TickResult,
) -> None:
    tenant_id, owner_email, today = busy_owner

    # Then each job was enqueued and ran once
    assert first.enqueued == len(DEFAULT_JOB_TIMES)
    assert (second.enqueued, second.duplicates) == (0, len(DEFAULT_JOB_TIMES))
    with session_scope(gcmc_db) as session:
        runs = session.scalars(select(JobRun)).all()
        logs = session.scalars(select(EmailLog)).all()
        notified = session.scalars(select(Notification.user_id)).all()
        titles = session.scalars(select(Document.title)).all()
    assert len(titles) == 12
    assert sorted(r.job for r in runs) == sorted(DEFAULT_JOB_TIMES)
    assert {r.status for r in runs} == {JobRunStatus.SUCCEEDED}
    stats = {r.job: r.stats for r in runs}
    assert stats["document_expiry_emails"]["digests_queued"] == 1
    assert stats["document_expiry_emails"]["items"] == 12
    # One digest email, to the owner (never the viewer), listing the 12 documents
    assert [(log.to_address, log.kind) for log in logs] == [
        (owner_email, "document_expiry_warning")
    ]
    [mail] = [m for m in memory.outbox if m["To"] == owner_email]
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert all(title in text for title in titles)
    assert len(notified) == 6  # documents expiring within 7 days, owner only (not the viewer)

    # When the job is forced to run again the same day
    run_daily_job.send(
        job="document_expiry_emails",
        tenant_id=tenant_id,
        local_date=today.isoformat(),
        force=True,
    )
    _drain(gcmc_broker, gcmc_worker)

    # Then no second email is queued or sent
    with session_scope(gcmc_db) as session:
        assert len(session.scalars(select(EmailLog)).all()) == 1
        rerun = session.scalars(select(JobRun).where(JobRun.job == "document_expiry_emails")).one()
    assert rerun.stats["digests_queued"] == 0
    assert rerun.stats["skipped_duplicates"] == 1


def test_the_tick_works_only_on_its_minutes() -> None:
    assert is_tick_minute(datetime(2026, 6, 1, 7, 0, tzinfo=UTC), 5)
    assert is_tick_minute(datetime(2026, 6, 1, 7, 35, tzinfo=UTC), 5)
    assert not is_tick_minute(datetime(2026, 6, 1, 7, 36, tzinfo=UTC), 5)
    assert is_tick_minute(datetime(2026, 6, 1, 7, 36, tzinfo=UTC), 1)


def test_the_tick_actor_is_periodic_on_the_scheduler_queue(gcmc_broker: dramatiq.Broker) -> None:
    assert scheduler_tick.queue_name == queues.SCHEDULER
    assert scheduler_tick.options["periodic"] is not None
    assert run_daily_job.queue_name == queues.SCHEDULED
    # Called directly (as a worker would) it ticks as of now, on the configured runtime
    scheduler_tick()
    assert current().broker is gcmc_broker

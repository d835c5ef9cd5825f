"""How a host application tests its use of gcmc-jobs with the packaged pytest fixtures.

Installing gcmc-jobs registers its pytest plugin: ``gcmc_broker`` (gcmc-jobs configured on a
stub broker), ``gcmc_join`` (wait for every queue, bounded), ``gcmc_tenant``,
``gcmc_session`` (a session on a throwaway, migrated PostgreSQL database),
``gcmc_worker_process`` (real ``dramatiq`` workers) and the rest, with no conftest needed::

    pytest examples/test_host_app.py
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import dramatiq
import host_app
import host_app.jobs  # registers the daily job, as GCMC_JOBS_HOST_MODULES does
import pytest
from host_app.actors import sync_client_to_crm
from host_app.models import crm_syncs, metadata
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

import gcmc_jobs
from gcmc_jobs.actors.schedule import tick_now
from gcmc_jobs.db.models import (
    Client,
    ComplianceLevel,
    ComplianceScore,
    DeadLetter,
    Document,
    DocumentStatus,
    DocumentVersion,
    JobRun,
    Tenant,
)
from gcmc_jobs.errors import DuplicateMessage
from gcmc_jobs.scheduling import run_for_tenant
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import WorkerProcess, wait_until


@pytest.fixture
def host_tables(gcmc_db: Engine) -> Engine:
    """The host's own table, created if missing and emptied (the plugin empties gcmc-jobs')."""
    metadata.create_all(gcmc_db)
    with gcmc_db.begin() as connection:
        connection.execute(delete(crm_syncs))
    return gcmc_db


def _client_with_a_document(session: Session, tenant: Tenant, status: DocumentStatus) -> Client:
    client = Client(tenant_id=tenant.id, name="Bluebird Bakery", email="owner@bluebird.example")
    session.add(client)
    session.flush()
    document = Document(
        tenant_id=tenant.id, client_id=client.id, title="Licence", document_type="license"
    )
    session.add(document)
    session.flush()
    version = DocumentVersion(document_id=document.id, status=status)
    session.add(version)
    session.flush()
    document.latest_version_id = version.id
    session.commit()
    return client


def test_a_reviewed_document_refreshes_the_clients_score(
    gcmc_join: Callable[..., None], gcmc_tenant: Tenant, gcmc_session: Session
) -> None:
    # Given a client whose only document was just rejected
    client = _client_with_a_document(gcmc_session, gcmc_tenant, DocumentStatus.REJECTED)

    # When the host application reacts to the review
    host_app.on_document_reviewed(gcmc_tenant.id)
    gcmc_join()

    # Then the client's score reflects the missing document
    score = gcmc_session.get(ComplianceScore, client.id)
    assert score is not None
    assert (score.missing_count, score.score, score.level) == (1, 95, ComplianceLevel.LOW)


def test_the_hosts_actor_runs_once_per_dedup_key(
    gcmc_join: Callable[..., None], gcmc_tenant: Tenant, host_tables: Engine
) -> None:
    sync_client_to_crm.send(client_id=7, tenant_id=gcmc_tenant.id)
    with pytest.raises(DuplicateMessage):  # the same key while the first is pending
        sync_client_to_crm.send(client_id=7, tenant_id=gcmc_tenant.id)
    gcmc_join()

    with host_tables.connect() as connection:
        assert connection.scalars(select(crm_syncs.c.client_id)).all() == [7]


def test_the_hosts_actor_that_fails_for_good_is_dead_lettered(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_tenant: Tenant,
    gcmc_session: Session,
) -> None:
    sync_client_to_crm.send(client_id=0, tenant_id=gcmc_tenant.id)
    gcmc_join(fail_fast=False)  # the default would re-raise the PermanentError here

    dead = gcmc_session.scalars(select(DeadLetter)).one()
    assert (dead.actor, dead.error_type, dead.attempts) == (
        "sync_client_to_crm",
        "gcmc_jobs.errors.PermanentError",
        1,
    )
    assert dead.kwargs == {"client_id": 0, "tenant_id": gcmc_tenant.id}


def test_the_hosts_daily_job_runs_under_the_ledger(
    gcmc_db: Engine, gcmc_tenant: Tenant, gcmc_session: Session
) -> None:
    _client_with_a_document(gcmc_session, gcmc_tenant, DocumentStatus.PENDING_REVIEW)

    first = run_for_tenant(gcmc_db, "pending_review_count", gcmc_tenant.id)
    second = run_for_tenant(gcmc_db, "pending_review_count", gcmc_tenant.id)

    assert first.ran
    assert first.stats["pending_review"] == 1
    assert not second.ran  # once per tenant per local day


@pytest.mark.slow
def test_a_real_worker_runs_the_hosts_actor_and_daily_job(
    gcmc_settings: Settings,
    gcmc_redis_url: str,
    gcmc_worker_process: Callable[..., WorkerProcess],
    gcmc_tenant: Tenant,
    gcmc_session: Session,
    host_tables: Engine,
) -> None:
    # Given workers on Redis and PostgreSQL that load the host's modules
    settings = gcmc_settings.model_copy(
        update={
            "broker_url": gcmc_redis_url,
            "host_modules": ["host_app.actors", "host_app.jobs"],
        }
    )
    worker = gcmc_worker_process(settings)
    _client_with_a_document(gcmc_session, gcmc_tenant, DocumentStatus.PENDING_REVIEW)

    # When the host sends its actor and the scheduler ticks after 06:00 tenant time
    with gcmc_jobs.configured(settings) as runtime:
        sync_client_to_crm.send(client_id=42, tenant_id=gcmc_tenant.id)
        now = datetime.now(UTC).replace(hour=23, minute=0)  # past every job's time, UTC tenant
        ticked = tick_now(runtime, now, jobs=["pending_review_count"])
    assert ticked.enqueued == 1

    # Then the worker ran both: the CRM row, and the ledger's succeeded run with its stats
    def done() -> JobRun | None:
        gcmc_session.expire_all()
        with host_tables.connect() as connection:
            synced = connection.scalars(select(crm_syncs.c.client_id)).all()
        run = gcmc_session.scalars(select(JobRun).where(JobRun.job == "pending_review_count"))
        found = run.one_or_none()
        return found if synced == [42] and found and found.status == "succeeded" else None

    run = wait_until(done, what="the host's actor and daily job", diagnose=worker.describe)
    assert run.stats["pending_review"] == 1

"""The compliance actors, through the package's broker and a Dramatiq worker."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors import refresh_all_compliance, refresh_compliance
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import ComplianceScore, DocumentStatus, Tenant
from gcmc_jobs.services.tenancy import utcnow
from tests import factories as f


def _scored_clients(engine: Engine) -> dict[int, set[int]]:
    with Session(engine) as session:
        rows = session.execute(select(ComplianceScore.tenant_id, ComplianceScore.client_id))
        scored: dict[int, set[int]] = {}
        for tenant_id, client_id in rows:
            scored.setdefault(tenant_id, set()).add(client_id)
        return scored


def test_refresh_compliance_stores_the_tenants_scores(
    gcmc_broker: dramatiq.Broker, gcmc_worker: dramatiq.Worker, gcmc_db: Engine
) -> None:
    # Given a tenant with one client missing a document
    with session_scope(gcmc_db) as session:
        t = f.tenant(session)
        c = f.client(session, t)
        f.document(session, c, status=DocumentStatus.REJECTED)
        tenant_id, client_id = t.id, c.id

    # When its refresh is sent and processed
    refresh_compliance.send(tenant_id, today=utcnow().date().isoformat())
    gcmc_broker.join(queues.COMPLIANCE)
    gcmc_worker.join()

    # Then the client's score is stored
    with Session(gcmc_db) as session:
        score = session.get(ComplianceScore, client_id)
        assert score is not None
        assert (score.missing_count, score.score) == (1, 95)


def test_refresh_all_compliance_sends_one_refresh_per_active_tenant(
    gcmc_broker: dramatiq.Broker, gcmc_worker: dramatiq.Worker, gcmc_db: Engine
) -> None:
    # Given three active tenants and an inactive one, each with two clients
    with session_scope(gcmc_db) as session:
        tenants = [f.tenant(session, name=f"t{n}", active=n < 3) for n in range(4)]
        for t in tenants:
            for _ in range(2):
                f.filing(session, f.client(session, t), due=utcnow().date() - timedelta(days=9))
        active = {t.id for t in tenants[:3]}
        inactive = tenants[3].id

    # When the fan-out runs, and the refreshes it sends
    refresh_all_compliance.send()
    gcmc_broker.join(queues.COMPLIANCE)
    gcmc_worker.join()

    # Then every active tenant is scored, and the inactive one is not
    scored = _scored_clients(gcmc_db)
    assert set(scored) == active
    assert all(len(clients) == 2 for clients in scored.values())
    assert inactive not in scored
    with Session(gcmc_db) as session:
        assert session.scalar(select(Tenant.is_active).where(Tenant.id == inactive)) is False


def test_refresh_compliance_of_an_unknown_tenant_fails_without_retry(
    gcmc_broker: dramatiq.Broker, gcmc_worker: dramatiq.Worker
) -> None:
    # When a refresh names a tenant that does not exist
    message = refresh_compliance.send(987654)
    gcmc_broker.join(queues.COMPLIANCE, fail_fast=False)
    gcmc_worker.join()

    # Then it is dead on the first attempt (a permanent error is not retried)
    dead = list(gcmc_broker.dead_letters)
    assert [m.message_id for m in dead] == [message.message_id]
    assert dead[0].options.get("retries", 0) == 0

"""Scenario 3: PostgreSQL goes away in the middle of a refresh, and comes back.

The refresh is one statement in one transaction per tenant. When the server stops under
it, the attempt fails and rolls back; Dramatiq's retries try again with backoff; once the
server is back an attempt commits every score of the tenant at once. No partial scores.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine, select

from gcmc_jobs.actors.compliance import refresh_compliance
from gcmc_jobs.db.models import ComplianceScore
from gcmc_jobs.runtime import Runtime
from tests.faults.data import (
    SEEDED_SCORE,
    ScoresLock,
    install_refresh_ledger,
    refreshes_per_tenant,
    seed_tenants,
)
from tests.faults.logs import queue_is_drained, retry_events
from tests.support import PostgresCluster, RedisServer, WorkerProcess, wait_until

TODAY = date(2026, 11, 29)


def test_a_refresh_interrupted_by_a_database_outage_retries_and_commits_every_score_once(
    fault_db: tuple[str, Engine],
    pg_cluster: PostgresCluster,
    redis_server: RedisServer,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given a tenant with 200 clients, and a worker
    _, engine = fault_db
    seeded = seed_tenants(engine, tenants=1, clients_per_tenant=200, today=TODAY)
    tenant_id = seeded.tenant_ids[0]
    install_refresh_ledger(engine)
    workers = start_workers(processes=1, threads=2)
    workers.wait_ready()

    # And the refresh is running: its upsert waits on a lock the test holds
    lock = ScoresLock(engine).__enter__()
    refresh_compliance.send(tenant_id, today=TODAY.isoformat())
    wait_until(lock.waiting, timeout_s=30, what="the refresh's upsert", diagnose=workers.log_tail)

    # When PostgreSQL stops mid-statement and stays down while the job retries twice
    pg_cluster.stop("fast")
    lock.lost()
    wait_until(
        lambda: len(retry_events(workers.output())) >= 2,
        timeout_s=60,
        what="two retries while the database is down",
        diagnose=workers.log_tail,
    )
    pg_cluster.start()

    # Then once the database is back, a retry commits the whole tenant, once
    wait_until(
        lambda: refreshes_per_tenant(engine).get(tenant_id),
        timeout_s=90,
        what="the refresh to commit after the outage",
        diagnose=workers.log_tail,
    )
    wait_until(
        lambda: queue_is_drained(redis_server.client(), namespace, refresh_compliance.queue_name),
        timeout_s=30,
        what="the message to be acknowledged",
    )
    with engine.connect() as connection:
        scores = connection.execute(
            select(ComplianceScore.score, ComplianceScore.computed_at).where(
                ComplianceScore.tenant_id == tenant_id
            )
        ).all()
    retries = len(retry_events(workers.output()))
    print(f"\n[scenario 3] sent=1 retries={retries} committed={refreshes_per_tenant(engine)}")
    assert refreshes_per_tenant(engine) == {tenant_id: 1}
    assert len(scores) == seeded.clients_per_tenant
    assert {score for score, _ in scores} == {SEEDED_SCORE}
    assert len({computed_at for _, computed_at in scores}) == 1, "scores from two attempts"

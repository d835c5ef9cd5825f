"""Scenario 2: Redis crashes and restarts while workers are in the middle of a run.

Redis runs with an append-only file fsynced on every write (the configuration the README's
"Guarantees" section requires), so a crash loses nothing it acknowledged. Workers lose their
connection, reconnect, finish what they were doing, acknowledge it, and drain the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine

from gcmc_jobs.actors.compliance import refresh_compliance
from gcmc_jobs.runtime import Runtime
from tests.faults.data import ScoresLock, install_refresh_ledger, refreshes_per_tenant, seed_tenants
from tests.faults.logs import dead_lettered, queue_is_drained
from tests.support import RedisServer, WorkerProcess, wait_until

TODAY = date(2026, 11, 29)
TENANTS = 600
THREADS = 4
PROCESSES = 2


def test_workers_survive_a_redis_crash_mid_run_and_every_refresh_runs_once(
    fault_db: tuple[str, Engine],
    redis_server: RedisServer,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given 600 tenants and two worker processes that have already refreshed some of them
    _, engine = fault_db
    tenant_ids = seed_tenants(engine, tenants=TENANTS, clients_per_tenant=2, today=TODAY).tenant_ids
    install_refresh_ledger(engine)
    workers = start_workers(processes=PROCESSES, threads=THREADS)
    workers.wait_ready()
    first, rest = tenant_ids[:100], tenant_ids[100:]
    for tenant_id in first:
        refresh_compliance.send(tenant_id, today=TODAY.isoformat())
    wait_until(
        lambda: len(refreshes_per_tenant(engine)) == len(first),
        timeout_s=60,
        what="the first 100 refreshes",
        diagnose=workers.log_tail,
    )

    # And every worker thread is in the middle of a refresh, with 492 more queued
    with ScoresLock(engine) as lock:
        for tenant_id in rest:
            refresh_compliance.send(tenant_id, today=TODAY.isoformat())
        wait_until(
            lambda: lock.waiting() == PROCESSES * THREADS,
            timeout_s=30,
            what="every worker thread to be in flight",
            diagnose=workers.log_tail,
        )

        # When Redis crashes (SIGKILL) and comes back on the same port and files
        redis_server.kill()
        redis_server.start()
        # (the in-flight refreshes finish when the lock goes, with Redis back)

    # Then the workers reconnect and finish: every tenant refreshed exactly once
    client = redis_server.client()
    wait_until(
        lambda: queue_is_drained(client, namespace, refresh_compliance.queue_name),
        timeout_s=120,
        what="every message to be acknowledged",
        diagnose=workers.log_tail,
    )
    counts = refreshes_per_tenant(engine)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    dead = dead_lettered(client, namespace, refresh_compliance.queue_name)
    print(
        f"\n[scenario 2] sent={TENANTS} processed={len(counts)} duplicates={duplicates} "
        f"dead_lettered={dead} in_flight_at_crash={PROCESSES * THREADS}"
    )
    assert set(counts) == set(tenant_ids), "a refresh was lost"
    assert duplicates == 0
    assert dead == 0
    assert workers.alive()

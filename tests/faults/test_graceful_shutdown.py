"""Scenario 6: a worker receives SIGTERM (a deploy, a scale-down) in the middle of a run.

Dramatiq stops taking work, lets the messages already running finish (within the shutdown
timeout), and puts the messages it had prefetched back on the queue. A new worker then
drains the queue. Nothing is lost and nothing runs twice.
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
TENANTS = 300
THREADS = 4
PROCESSES = 2


def test_sigterm_mid_run_finishes_in_flight_work_and_requeues_the_rest(
    fault_db: tuple[str, Engine],
    redis_server: RedisServer,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given 300 refreshes queued and every thread of two worker processes in the middle of one
    _, engine = fault_db
    tenant_ids = seed_tenants(engine, tenants=TENANTS, clients_per_tenant=2, today=TODAY).tenant_ids
    install_refresh_ledger(engine)
    client = redis_server.client()
    workers = start_workers(processes=PROCESSES, threads=THREADS)
    workers.wait_ready()
    with ScoresLock(engine) as lock:
        for tenant_id in tenant_ids:
            refresh_compliance.send(tenant_id, today=TODAY.isoformat())
        in_flight = wait_until(
            lambda: (n := lock.waiting()) == PROCESSES * THREADS and n,
            timeout_s=30,
            what="every worker thread to be in flight",
            diagnose=workers.log_tail,
        )

        # When the worker group receives SIGTERM and both processes begin shutting down
        workers.send_sigterm()
        wait_until(
            lambda: workers.output().count("Shutting down") >= PROCESSES,
            timeout_s=30,
            what="both worker processes to begin their shutdown",
            diagnose=workers.log_tail,
        )
    # (the lock is released: the in-flight refreshes may now finish)
    exit_code = workers.stop(timeout_s=60)

    # Then the in-flight refreshes completed, and everything else is back on the queue
    finished_before_exit = refreshes_per_tenant(engine)
    assert len(finished_before_exit) >= in_flight
    assert all(n == 1 for n in finished_before_exit.values())

    # And a new worker drains the rest: every tenant refreshed exactly once
    replacement = start_workers(processes=1, threads=THREADS)
    wait_until(
        lambda: queue_is_drained(client, namespace, refresh_compliance.queue_name),
        timeout_s=120,
        what="the replacement worker to drain the queue",
        diagnose=replacement.log_tail,
    )
    counts = refreshes_per_tenant(engine)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"\n[scenario 6] sent={TENANTS} in_flight_at_sigterm={in_flight} "
        f"finished_by_stopping_worker={len(finished_before_exit)} "
        f"finished_by_replacement={len(counts) - len(finished_before_exit)} "
        f"duplicates={duplicates} lost={TENANTS - len(counts)} exit_code={exit_code}"
    )
    assert set(counts) == set(tenant_ids), "a refresh was lost"
    assert duplicates == 0
    assert dead_lettered(client, namespace, refresh_compliance.queue_name) == 0

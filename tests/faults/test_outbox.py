"""The transactional outbox with real processes: hosts commit (or roll back) messages, relays
(``gcmc-jobs outbox relay`` and the relay thread of ``dramatiq`` workers) move them to Redis,
workers run them. Whatever is killed or down, every committed message runs exactly once and
nothing rolled back ever runs.

The probe actor (``tests/faults/outbox_app.py``) records each committed run in PostgreSQL.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import Connection, Engine, func, select, text

from gcmc_jobs import outbox
from gcmc_jobs.db.models import OutboxMessage
from gcmc_jobs.testing import WorkerProcess
from tests.faults.outbox_app import ACTOR, QUEUE, RUNS_DDL
from tests.support import REPO_ROOT, RedisServer, dramatiq_worker, wait_until

GCMC_JOBS = str(Path(sys.executable).with_name("gcmc-jobs"))


def probe(n: int) -> dramatiq.Message[object]:
    return dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(n,), kwargs={}, options={})


def commit(engine: Engine, numbers: range) -> None:
    """One host transaction writing one outbox message per number."""
    with engine.begin() as connection:
        for n in numbers:
            outbox.enqueue(connection, probe(n))


def runs(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT n, count(*) FROM outbox_probe_runs GROUP BY n"))
        return {int(n): int(count) for n, count in found}


def waiting_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OutboxMessage)).scalar())


@pytest.fixture
def env(gcmc_db: Engine, gcmc_postgres_url: str, own_redis: RedisServer) -> dict[str, str]:
    with gcmc_db.begin() as connection:
        connection.execute(text(RUNS_DDL))
        connection.execute(text("TRUNCATE outbox_probe_runs"))
    return {
        "GCMC_JOBS_DATABASE_URL": gcmc_postgres_url,
        "GCMC_JOBS_BROKER_URL": own_redis.url,
        "GCMC_JOBS_NAMESPACE": f"gcmc_outbox_{uuid.uuid4().hex[:10]}",
        "GCMC_JOBS_OUTBOX_POLL_MS": "200",
        "GCMC_JOBS_MIN_BACKOFF_MS": "100",
        "GCMC_JOBS_MAX_BACKOFF_MS": "1000",
        "GCMC_JOBS_LOG_FORMAT": "json",
    }


@pytest.fixture
def processes(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``workers`` (``dramatiq`` with the probe actor) or ``relay`` processes; all are
    killed at the end."""
    started: list[WorkerProcess] = []

    def start(
        kind: str, *, extra: dict[str, str] | None = None, once: bool = False
    ) -> WorkerProcess:
        log = tmp_path / f"{kind}-{len(started)}.log"
        environment = {**env, **(extra or {})}
        if kind == "workers":
            process = dramatiq_worker(
                environment, log, modules=("gcmc_jobs.worker", "tests.faults.outbox_app"),
                processes=1, threads=4, cwd=tmp_path,
            )  # fmt: skip
        else:
            argv = [GCMC_JOBS, "outbox", "relay", *(["--once"] if once else [])]
            process = WorkerProcess(
                argv, log_path=log, env=environment, ready_line="relaying the outbox",
                cwd=tmp_path, pythonpath=[REPO_ROOT],
            )  # fmt: skip
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.kill()


def all_ran_once(engine: Engine, expected: int, *diagnose: WorkerProcess) -> dict[int, int]:
    wait_until(
        lambda: len(runs(engine)) >= expected and waiting_rows(engine) == 0,
        timeout_s=90,
        what=f"{expected} probes to run and the outbox to empty",
        diagnose=lambda: "\n".join(p.describe() for p in diagnose),
    )
    return runs(engine)


def test_a_rolled_back_message_never_runs_and_a_committed_one_does(
    gcmc_db: Engine, processes: Callable[..., WorkerProcess]
) -> None:
    # Given one host transaction that rolls back and one that commits
    with gcmc_db.connect() as connection:
        transaction = connection.begin()
        outbox.enqueue(connection, probe(1))
        transaction.rollback()
    commit(gcmc_db, range(2, 3))

    # When a relay runs to the end, then a worker drains the queue
    relay = processes("relay", once=True)
    assert relay.process is not None
    assert relay.process.wait(timeout=60) == 0, relay.describe()
    assert "relayed 1 message(s)" in relay.output()
    workers = processes("workers", extra={"GCMC_JOBS_OUTBOX_RELAY": "false"})

    # Then only the committed message ran
    assert all_ran_once(gcmc_db, 1, workers) == {2: 1}


def test_a_relay_killed_between_enqueue_and_delete_causes_no_second_run(
    gcmc_db: Engine, processes: Callable[..., WorkerProcess], own_redis: RedisServer,
    env: dict[str, str],
) -> None:  # fmt: skip
    # Given 200 committed messages, and the outbox table locked so that a relay can take and
    # enqueue a batch but not delete it
    commit(gcmc_db, range(200))
    client = own_redis.client()
    with gcmc_db.connect() as lock:
        lock.begin()
        lock.execute(text("LOCK TABLE outbox_messages IN SHARE MODE"))
        relay = processes("relay", extra={"GCMC_JOBS_OUTBOX_BATCH_SIZE": "50"})
        queue = f"{env['GCMC_JOBS_NAMESPACE']}:{QUEUE}"
        wait_until(
            lambda: client.llen(queue) == 50,
            timeout_s=60,
            what="the relay's first batch on the broker",
            diagnose=relay.describe,
        )
        # When the relay is SIGKILLed mid-batch (its rows enqueued, not deleted)
        relay.kill()
        _rollback(lock)
    assert waiting_rows(gcmc_db) == 200

    # And workers (each with its relay thread) take over
    workers = processes("workers")

    # Then every message ran exactly once
    counts = all_ran_once(gcmc_db, 200, workers)
    assert sorted(counts) == list(range(200))
    assert set(counts.values()) == {1}, {n: c for n, c in counts.items() if c != 1}


def _rollback(connection: Connection) -> None:
    connection.rollback()


def test_two_relays_racing_send_each_message_once(
    gcmc_db: Engine, processes: Callable[..., WorkerProcess]
) -> None:
    # Given two relay processes and a worker (its own relay thread off)
    relays = [processes("relay", extra={"GCMC_JOBS_OUTBOX_BATCH_SIZE": "20"}) for _ in range(2)]
    for relay in relays:
        relay.wait_ready()
    workers = processes("workers", extra={"GCMC_JOBS_OUTBOX_RELAY": "false"})

    # When hosts commit 400 messages in 40 transactions while both relays run
    for start in range(0, 400, 10):
        commit(gcmc_db, range(start, start + 10))

    # Then each ran once
    counts = all_ran_once(gcmc_db, 400, workers, *relays)
    assert sorted(counts) == list(range(400))
    assert set(counts.values()) == {1}


def test_messages_committed_while_redis_is_down_all_run_once_when_it_returns(
    gcmc_db: Engine, processes: Callable[..., WorkerProcess], own_redis: RedisServer
) -> None:
    # Given workers whose relay threads are running, then Redis goes down
    workers = processes("workers")
    workers.wait_ready()
    own_redis.stop()

    # When hosts commit 150 messages meanwhile (the database alone is needed to commit)
    for start in range(0, 150, 15):
        commit(gcmc_db, range(start, start + 15))
    workers.wait_for_output("outbox_relay_failed", timeout_s=60)
    assert waiting_rows(gcmc_db) == 150

    # Then once Redis is back, every message runs, once
    own_redis.start()
    counts = all_ran_once(gcmc_db, 150, workers)
    assert sorted(counts) == list(range(150))
    assert set(counts.values()) == {1}

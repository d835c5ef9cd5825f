"""Scenario 5: a message fails for good while the dead-letter store (the database) is down.

The broker has already moved the message to its own dead-letter queue (``<queue>.XQ``)
when ``DeadLetters`` tries to record it; the record fails, an error is logged
(``dead_letter_store_failed``), and the message stays in ``.XQ``, whole: nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from sqlalchemy import Engine, text

from gcmc_jobs.actors.compliance import refresh_compliance
from gcmc_jobs.runtime import Runtime
from tests.faults.logs import dead_lettered, events
from tests.support import PostgresCluster, RedisServer, WorkerProcess, wait_until


def test_a_message_failing_for_good_while_the_store_is_down_stays_in_the_broker_dlq(
    fault_db: tuple[str, Engine],
    pg_cluster: PostgresCluster,
    redis_server: RedisServer,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given the database (which holds the dead_letters table) is down
    _, engine = fault_db
    client = redis_server.client()
    queue = refresh_compliance.queue_name
    workers = start_workers(processes=1, threads=2)
    workers.wait_ready()
    pg_cluster.stop("fast")

    # When a message with no retries left fails (it cannot reach the database either)
    message = refresh_compliance.send_with_options(args=(1,), max_retries=0)

    # Then it is in the broker's dead-letter queue, whole, and the failure is logged
    wait_until(
        lambda: dead_lettered(client, namespace, queue) == 1,
        timeout_s=60,
        what="the message in the broker's dead-letter queue",
        diagnose=workers.log_tail,
    )
    logged = wait_until(
        lambda: [
            e
            for e in events(workers.output())
            if e.get("event") == "dead_letter_store_failed"
            and e.get("message_id") == message.message_id
        ],
        timeout_s=30,
        what="dead_letter_store_failed to be logged",
        diagnose=workers.log_tail,
    )
    kept = [dramatiq.Message.decode(raw) for raw in client.hvals(f"{namespace}:{queue}.XQ.msgs")]
    assert [(m.message_id, m.actor_name, tuple(m.args)) for m in kept] == [
        (message.message_id, "refresh_compliance", (1,))
    ]
    assert logged[0]["level"] == "error"

    # And when the database is back, no record appeared behind the broker's back
    pg_cluster.start()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM dead_letters")) == 0
    print(
        f"\n[scenario 5] sent=1 dead_lettered_in_broker_xq=1 dead_letters_rows=0 "
        f"error_logged={logged[0]['event']} kept_in={logged[0].get('kept_in')}"
    )

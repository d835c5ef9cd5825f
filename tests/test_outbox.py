"""gcmc_jobs.outbox and its relay, in-process: a message written in the host's transaction
is sent when, and only when, that transaction commits; the relay sends each once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from gcmc_jobs import outbox
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import OutboxMessage
from gcmc_jobs.errors import KeyTemplateError
from gcmc_jobs.middleware import OutboxRelay, SqlOutboxStore
from gcmc_jobs.middleware.stores.outbox import OutboxRow
from gcmc_jobs.redis_keys import messages_key, outbox_relayed_key, queue_key
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import wait_until

QUEUE = "outbox_test"


def relay_of(broker: dramatiq.Broker) -> OutboxRelay:
    (relay,) = [m for m in broker.middleware if isinstance(m, OutboxRelay)]
    return relay


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OutboxMessage)).scalar())


@pytest.fixture
def recorded(gcmc_broker: dramatiq.Broker) -> tuple[dramatiq.Actor[Any, Any], list[Any]]:
    calls: list[Any] = []

    @dramatiq.actor(broker=gcmc_broker, queue_name=QUEUE, dedup_key="note:{n}")
    def outbox_note(n: int) -> None:
        calls.append(n)

    return outbox_note, calls


def test_a_committed_message_is_relayed_by_the_workers_relay_thread_and_runs_once(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, recorded: Any, gcmc_worker: dramatiq.Worker
) -> None:
    actor, calls = recorded
    with Session(gcmc_db) as session, session.begin():
        message = outbox.send(session, actor, n=1)

    wait_until(lambda: rows(gcmc_db) == 0, timeout_s=30, what="the relay thread to take it")
    gcmc_broker.join(QUEUE)
    gcmc_worker.join()

    assert calls == [1]
    assert rows(gcmc_db) == 0
    assert message.options["dedup_key"] == "note:1"  # resolved in the caller


def test_a_rolled_back_message_is_never_sent(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, recorded: Any
) -> None:
    actor, _ = recorded
    with gcmc_db.connect() as connection:
        transaction = connection.begin()
        outbox.send(connection, actor, n=2)
        transaction.rollback()

    assert relay_of(gcmc_broker).drain(gcmc_broker) == 0
    assert gcmc_broker.queues[QUEUE].qsize() == 0


def test_a_bad_call_fails_in_the_caller_and_writes_nothing(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, recorded: Any
) -> None:
    actor, _ = recorded
    with Session(gcmc_db) as session, session.begin():
        with pytest.raises(KeyTemplateError):
            outbox.send(session, actor, m=3)  # the dedup key needs n
        with pytest.raises(TypeError):
            outbox.send(session, actor, n=object())  # not JSON
    assert rows(gcmc_db) == 0


class KilledBeforeDelete(SqlOutboxStore):
    """The relay dies after the broker took the batch, before its rows are deleted."""

    @contextmanager
    def batch(self, limit: int) -> Iterator[list[OutboxRow]]:
        with super().batch(limit) as taken:
            yield taken
            raise SystemExit("killed")


def test_on_redis_a_batch_the_broker_already_has_is_not_sent_again(
    gcmc_db: Engine, gcmc_postgres_url: str, gcmc_redis_url: str
) -> None:
    # Given messages committed to the outbox, and a relay that enqueued them and died
    # before deleting their rows
    namespace = f"gcmc_test_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        database_url=gcmc_postgres_url, broker_url=gcmc_redis_url, namespace=namespace
    )
    client = redis.Redis.from_url(gcmc_redis_url)
    try:
        with configured(settings, engine=gcmc_db) as runtime:
            broker = runtime.broker
            with Session(gcmc_db) as session, session.begin():
                for n in range(5):
                    message = dramatiq.Message(
                        queue_name=QUEUE, actor_name="outbox_note", args=(n,), kwargs={},
                        options={},
                    )  # fmt: skip
                    outbox.enqueue(session, message)
            relay = relay_of(broker)
            dying = OutboxRelay(KilledBeforeDelete(gcmc_db), relay.enqueue)
            with pytest.raises(SystemExit):
                dying.relay_once(broker)
            assert rows(gcmc_db) == 5
            assert client.llen(queue_key(namespace, QUEUE)) == 5

            # When the next relay runs
            assert relay.drain(broker) == 5

            # Then the rows are gone and the broker still holds each message once
            assert rows(gcmc_db) == 0
            assert client.llen(queue_key(namespace, QUEUE)) == 5
            assert client.hlen(messages_key(namespace, QUEUE)) == 5
            ids = [m.message_id for m in _stored(client, namespace)]
            assert len(set(ids)) == 5
            assert all(client.exists(outbox_relayed_key(namespace, i)) for i in ids)
    finally:
        for key in client.scan_iter(match=f"{namespace}*", count=1000):
            client.delete(key)
        client.close()


def _stored(client: Any, namespace: str) -> list[dramatiq.Message[Any]]:
    bodies = client.hvals(messages_key(namespace, QUEUE))
    return [dramatiq.Message.decode(body) for body in bodies]


def test_a_delay_counts_from_the_write(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, recorded: Any
) -> None:
    actor, _ = recorded
    with Session(gcmc_db) as session, session.begin():
        outbox.send_with_options(session, actor, kwargs={"n": 4}, delay=60_000)
    relay_of(gcmc_broker).drain(gcmc_broker)
    delayed = gcmc_broker.queues[f"{QUEUE}.DQ"]
    assert delayed.qsize() == 1


def test_on_postgresql_a_commit_wakes_the_waiting_relay(gcmc_db: Engine) -> None:
    import threading

    store = SqlOutboxStore(gcmc_db)
    stop = threading.Event()
    waiter = threading.Thread(target=store.wait, args=(600_000, stop))
    try:
        store.wait(1, stop)  # LISTEN before the commit
        waiter.start()
        with Session(gcmc_db) as session, session.begin():
            message = dramatiq.Message(
                queue_name=QUEUE, actor_name="outbox_note", args=(1,), kwargs={}, options={}
            )
            outbox.enqueue(session, message)
        waiter.join(timeout=60)  # a bound on a hang: without the NOTIFY it waits 10 minutes
        assert not waiter.is_alive()
    finally:
        stop.set()
        store.close()


def test_a_worker_shutdown_ends_the_relays_wait_on_postgresql(gcmc_db: Engine) -> None:
    # Given a worker's relay waiting for a commit, with nothing to wake it for 10 minutes
    relay = OutboxRelay(SqlOutboxStore(gcmc_db), enqueue_many, poll_ms=600_000)
    broker = StubBroker()
    before = set(threading.enumerate())
    relay.after_worker_boot(broker, None)  # type: ignore[arg-type]
    (thread,) = set(threading.enumerate()) - before

    def listening() -> int:
        with gcmc_db.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query = 'LISTEN gcmc_jobs_outbox' AND state = 'idle'"
                    )
                )
                or 0
            )

    wait_until(listening, what="the relay to LISTEN")

    # When the worker shuts down
    stopping = threading.Thread(target=relay.before_worker_shutdown, args=(broker, None))
    stopping.start()

    # Then the shutdown wakes the relay's wait and its thread ends (a bound on a hang: without
    # the wake-up it waits the whole 10 minutes, and so does the shutdown)
    wait_until(lambda: not thread.is_alive(), timeout_s=60, what="the relay thread to end")
    stopping.join(timeout=60)
    assert not stopping.is_alive()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_batch_deletes_exactly_the_rows_it_took(
    dialect: str, gcmc_db: Engine, tmp_path: Path
) -> None:
    # Given 7 committed rows (on PostgreSQL: one array parameter for the DELETE; elsewhere IN)
    engine = gcmc_db
    if dialect == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
        upgrade(engine)
    with engine.begin() as connection:
        connection.execute(OutboxMessage.__table__.delete())
        for n in range(7):
            message = dramatiq.Message(
                queue_name=QUEUE, actor_name="a", args=(n,), kwargs={}, options={}
            )
            outbox.enqueue(connection, message)
    store = SqlOutboxStore(engine)

    # When a batch of 5 is taken, then one whose block raises
    with store.batch(5) as taken:
        first = [dramatiq.Message.decode(r.body.encode()).args[0] for r in taken]
    seen: list[int] = []

    def broker_down() -> None:
        with store.batch(5) as taken:
            seen.append(len(taken))
            raise RuntimeError("the broker is down")

    with pytest.raises(RuntimeError):
        broker_down()
    assert seen == [2]

    # Then the first five are gone, the last two stay for the next attempt
    assert first == [0, 1, 2, 3, 4]
    with store.batch(5) as taken:
        assert [dramatiq.Message.decode(r.body.encode()).args[0] for r in taken] == [5, 6]
    assert rows(engine) == 0

"""The middleware on real Redis with two ``dramatiq`` worker processes (4 threads each)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.db.models import DeadLetter
from gcmc_jobs.errors import DuplicateMessage
from gcmc_jobs.middleware import SqlDeadLetterStore
from gcmc_jobs.ops import dead_letters as service
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.settings import Settings
from tests.middleware.redis_app import QUEUE, calls_key, declare, fail_key
from tests.support import WorkerProcess, dramatiq_worker, wait_until

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def namespace(gcmc_redis_url: str) -> Iterator[str]:
    name = f"gcmc_test_mw_{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=f"{name}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture(scope="module")
def settings(gcmc_postgres_url: str, gcmc_redis_url: str, namespace: str) -> Settings:
    # A one-day window, so a window boundary almost never falls inside the test.
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=namespace,
        email_url="memory://",
        log_format="json",
        rate_limit=10,
        rate_limit_window_ms=DAY_MS,
        rate_limit_max_deferral_ms=3 * DAY_MS,
    )


@pytest.fixture(scope="module")
def workers(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """``dramatiq tests.middleware.redis_app -p 2 -t 4`` on QUEUE, ready when yielded."""
    env = {
        "GCMC_JOBS_MW_TEST_WORKER": "1",
        "GCMC_JOBS_DATABASE_URL": settings.database_url.get_secret_value(),
        "GCMC_JOBS_BROKER_URL": settings.broker_url.get_secret_value(),
        "GCMC_JOBS_NAMESPACE": settings.namespace,
        "GCMC_JOBS_LOG_FORMAT": "json",
        "GCMC_JOBS_RATE_LIMIT": str(settings.rate_limit),
        "GCMC_JOBS_RATE_LIMIT_WINDOW_MS": str(settings.rate_limit_window_ms),
        "GCMC_JOBS_RATE_LIMIT_MAX_DEFERRAL_MS": str(settings.rate_limit_max_deferral_ms),
    }
    worker = dramatiq_worker(
        env,
        tmp_path_factory.mktemp("mw") / "workers.log",
        modules=("tests.middleware.redis_app",),
        processes=2,
        threads=4,
        queues=(QUEUE,),
    )
    worker.start()
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.kill()  # the test is over: nothing to wait for in a graceful stop (~4 s)


@pytest.fixture
def sender(settings: Settings, gcmc_db: Engine) -> Iterator[tuple[dramatiq.Broker, dict[str, Any]]]:
    """The test process's own broker (whole stack) with the test actors."""
    with configured(settings, engine=gcmc_db) as runtime:
        broker = runtime.broker
        actors = declare(
            broker, redis_url=settings.broker_url.get_secret_value(), namespace=settings.namespace
        )
        yield broker, actors


@pytest.fixture
def client(gcmc_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(gcmc_redis_url)
    yield client
    client.close()


def count(client: redis.Redis, namespace: str, name: str) -> int:
    return int(client.get(calls_key(namespace, name)) or 0)


def queue_size(client: redis.Redis, namespace: str, queue: str) -> int:
    """Messages of ``queue`` not yet acknowledged (waiting or being processed)."""
    return int(client.hlen(f"{namespace}:{queue}.msgs"))


def test_a_message_failing_three_times_then_for_good_is_dead_lettered_once_and_replays(
    workers: WorkerProcess, sender: tuple[dramatiq.Broker, dict[str, Any]], client: redis.Redis,
    settings: Settings, gcmc_db: Engine,
) -> None:  # fmt: skip
    broker, actors = sender
    ns, name = settings.namespace, f"fragile-{uuid.uuid4().hex[:8]}"
    client.set(fail_key(ns, name), 1)
    message = actors["mw_fragile"].send(name=name)

    def rows() -> list[DeadLetter]:
        with Session(gcmc_db) as session:
            return list(session.scalars(select(DeadLetter).where(DeadLetter.actor == "mw_fragile")))

    wait_until(
        lambda: len(rows()) == 1,
        what="one dead letter of mw_fragile",
        diagnose=workers.describe,
    )
    (row,) = rows()
    assert row.message_id == message.message_id
    assert row.attempts == 3
    assert count(client, ns, name) == 3
    assert row.kwargs == {"name": name}

    client.delete(fail_key(ns, name))
    (result,) = service.replay_dead_letters(SqlDeadLetterStore(gcmc_db), broker, ids=[row.id])
    assert result.status == "replayed"
    wait_until(
        lambda: count(client, ns, name) == 4,
        what="the replayed message's run",
        diagnose=workers.describe,
    )
    wait_until(
        lambda: queue_size(client, ns, QUEUE) == 0,
        what="the queue to be empty",
        diagnose=workers.describe,
    )
    (row,) = rows()
    assert row.replayed_as == result.replayed_as


def test_a_stored_dead_letter_leaves_the_brokers_dead_letter_queue(
    workers: WorkerProcess, sender: tuple[dramatiq.Broker, dict[str, Any]], client: redis.Redis,
    settings: Settings, gcmc_db: Engine,
) -> None:  # fmt: skip
    # Issue 11, item 15: the message stayed in <queue>.XQ for 7 days after the dead_letters
    # table took it, so it was counted twice (and its options, secrets included, stayed).
    _, actors = sender
    ns, name = settings.namespace, f"secret-{uuid.uuid4().hex[:8]}"
    client.set(fail_key(ns, name), 1)
    message = actors["mw_fragile"].send(name=name)

    def stored() -> bool:
        with Session(gcmc_db) as session:
            return (
                session.scalar(
                    select(DeadLetter).where(DeadLetter.message_id == message.message_id)
                )
                is not None
            )

    wait_until(stored, what="the dead letter stored", diagnose=workers.describe)

    # Then the broker's dead-letter queue no longer holds it (its last attempt's Redis id is
    # not the first one's: each retry is enqueued anew, so look for its message id)
    def in_broker_dlq() -> bool:
        bodies = client.hvals(f"{ns}:{QUEUE}.XQ.msgs")
        return any(message.message_id.encode() in body for body in bodies)

    wait_until(
        lambda: not in_broker_dlq(),
        what="the message gone from the broker's dead-letter queue",
        diagnose=workers.describe,
    )
    [stats] = queue_stats(settings, [QUEUE], paused=())
    assert stats.dead == 0


def test_the_same_dedup_key_sent_100_times_concurrently_runs_once(
    workers: WorkerProcess, sender: tuple[dramatiq.Broker, dict[str, Any]], client: redis.Redis,
    settings: Settings,
) -> None:  # fmt: skip
    _, actors = sender
    ns, name = settings.namespace, f"once-{uuid.uuid4().hex[:8]}"
    sent: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(10)

    def send_ten() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                sent.append(
                    actors["mw_once"]
                    .send_with_options(kwargs={"name": name}, dedup_key=name)
                    .message_id
                )
            except DuplicateMessage:
                refused.append(name)

    threads = [threading.Thread(target=send_ten) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(sent), len(refused)) == (1, 99)
    wait_until(
        lambda: count(client, ns, name) == 1 and queue_size(client, ns, QUEUE) == 0,
        what="the one message to run and the queue to be empty",
        diagnose=workers.describe,
    )

    # And 100 copies enqueued by a plain Dramatiq broker (no enqueue-time claim) run once
    # on the two worker processes, checked atomically before running.
    plain = RedisBroker(url=settings.broker_url.get_secret_value(), namespace=ns, middleware=[])
    try:

        @dramatiq.actor(broker=plain, queue_name=QUEUE, actor_name="mw_once")
        def mw_once(name: str) -> None: ...

        other = f"{name}-plain"
        for _ in range(100):
            mw_once.send_with_options(kwargs={"name": other}, dedup_key=other)
        wait_until(
            lambda: queue_size(client, ns, QUEUE) == 0,
            what="the 100 plain copies to be consumed",
            diagnose=workers.describe,
        )
        assert count(client, ns, other) == 1
    finally:
        plain.close()


def test_25_emails_to_one_address_under_10_per_window_give_10_now_and_15_deferred(
    workers: WorkerProcess, sender: tuple[dramatiq.Broker, dict[str, Any]], client: redis.Redis,
    settings: Settings, gcmc_db: Engine,
) -> None:  # fmt: skip
    _, actors = sender
    ns, tag = settings.namespace, uuid.uuid4().hex[:8]
    hot, other = f"Hot-{tag}@Example.com", f"other-{tag}@example.com"
    for n in range(25):
        actors["mw_email"].send(to=hot, n=n)
    for n in range(3):
        actors["mw_email"].send(to=other, n=n)

    wait_until(
        lambda: queue_size(client, ns, QUEUE) == 0 and queue_size(client, ns, f"{QUEUE}.DQ") == 15,
        what="the queue empty and 15 emails deferred",
        diagnose=lambda: (
            f"ready={queue_size(client, ns, QUEUE)} "
            f"delayed={queue_size(client, ns, f'{QUEUE}.DQ')}\n{workers.describe()}"
        ),
    )
    assert count(client, ns, hot.lower()) == 10
    assert count(client, ns, other) == 3
    failed = client.hvals(f"{ns}:{QUEUE}.XQ.msgs")  # the broker's own dead-letter queue
    assert not [body for body in failed if b"mw_email" in body]
    with Session(gcmc_db) as session:
        assert session.scalars(select(DeadLetter).where(DeadLetter.actor == "mw_email")).all() == []

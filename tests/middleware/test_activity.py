"""Per-minute activity in Redis (issue 16, item 3): written by the workers' periodic stats
report, read back minute by minute for the dashboard's charts, bounded by a 25 h expiry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from gcmc_jobs.middleware import WorkerRegistry, WorkerStats
from gcmc_jobs.middleware.activity import ACTIVITY_TTL_MS, MINUTE_MS, record_activity
from gcmc_jobs.ops.activity import MAX_MINUTES, activity
from gcmc_jobs.redis_keys import activity_key, messages_key, queue_key
from gcmc_jobs.settings import Settings
from tests.support import wait_until

#: A fixed instant in the middle of a minute.
NOW = datetime(2026, 12, 2, 10, 30, 30, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
def settings(gcmc_redis_url: str, gcmc_namespace: str) -> Settings:
    return Settings(
        broker_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:act{uuid.uuid4().hex[:8]}",
        email_url="memory://",
        log_format="json",
    )


@pytest.fixture
def client(gcmc_redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(gcmc_redis_url)
    yield connection
    connection.close()


def test_reports_add_up_per_minute_and_keep_each_queues_depth(
    settings: Settings, client: redis.Redis
) -> None:
    ns = settings.namespace
    # Given a queue with 3 ready messages and 2 delayed ones
    client.rpush(queue_key(ns, "mail"), "a", "b", "c")
    client.hset(messages_key(ns, "mail.DQ"), mapping={"d": "x", "e": "y"})

    # When two workers report in the same minute, and one again in the next minute
    record_activity(client, ns, now_ms=NOW_MS, processed=5, failed=1, queues=["mail"])
    record_activity(client, ns, now_ms=NOW_MS + 1, processed=7, failed=0, queues=["mail", "x"])
    client.lpop(queue_key(ns, "mail"))
    record_activity(client, ns, now_ms=NOW_MS + MINUTE_MS, processed=2, failed=2, queues=["mail"])

    # Then the minutes hold the sums and the last depth; a minute with no report is a gap
    found = activity(settings, NOW.replace(minute=31), minutes=3)
    minute = NOW_MS // MINUTE_MS * MINUTE_MS // 1000
    assert found.minutes == [minute - 60, minute, minute + 60]
    assert found.processed == [None, 12, 2]
    assert found.failed == [None, 1, 2]
    assert found.depth == {"mail": [None, 5, 4], "x": [None, 0, None]}


def test_each_minute_expires_25_hours_after_its_last_report(
    settings: Settings, client: redis.Redis
) -> None:
    record_activity(client, settings.namespace, now_ms=NOW_MS, processed=1, failed=0, queues=[])
    ttl = client.pttl(activity_key(settings.namespace, NOW_MS // MINUTE_MS))
    assert 24 * 3_600_000 < ttl <= ACTIVITY_TTL_MS == 25 * 3_600_000


def test_the_range_is_checked_and_other_brokers_have_no_activity(settings: Settings) -> None:
    for minutes in (0, MAX_MINUTES + 1):
        with pytest.raises(ValueError, match="minutes must be between 1 and 1440"):
            activity(settings, NOW, minutes=minutes)
    stub = settings.model_copy(update={"broker_url": "stub://"})
    assert activity(stub, NOW).minutes == []


def test_a_redis_workers_periodic_report_records_what_it_processed(
    settings: Settings, gcmc_redis_url: str
) -> None:
    # Given a worker on real Redis whose registry reports every 50 ms
    broker = RedisBroker(url=gcmc_redis_url, namespace=settings.namespace, middleware=[])
    broker.add_middleware(WorkerRegistry(WorkerStats(), interval_ms=50))

    @dramatiq.actor(broker=broker, queue_name="charts")  # no Retries: a failure is final
    def work(fail: bool) -> None:
        if fail:
            raise RuntimeError("boom")

    # When it runs 6 messages, 2 of which fail
    for n in range(6):
        work.send(n % 3 == 0)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:

        def totals() -> tuple[int, int]:
            found = activity(settings, datetime.now(UTC), minutes=5)
            return (
                sum(v or 0 for v in found.processed),
                sum(v or 0 for v in found.failed),
            )

        # Then the minutes' counts add up to what it ran (each report adds its difference)
        wait_until(lambda: totals() == (6, 2), timeout_s=30, what="6 processed, 2 failed")
        found = activity(settings, datetime.now(UTC), minutes=5)
        assert set(found.depth) == {"charts"}
        assert [d for d in found.depth["charts"] if d is not None][-1] == 0
    finally:
        worker.stop()
        broker.close()
    assert totals() == (6, 2)  # the final report on shutdown adds nothing twice


def test_a_worker_stopping_reports_what_it_finished_since_its_last_report(
    settings: Settings, gcmc_redis_url: str
) -> None:
    # Given a worker whose periodic report would come only after an hour
    broker = RedisBroker(url=gcmc_redis_url, namespace=settings.namespace, middleware=[])
    stats = WorkerStats()
    broker.add_middleware(WorkerRegistry(stats, interval_ms=3_600_000))

    @dramatiq.actor(broker=broker, queue_name="charts")
    def work() -> None:
        pass

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        for _ in range(3):
            work.send()
        wait_until(lambda: stats.snapshot()["processed"] == 3, timeout_s=30, what="3 processed")
    finally:
        # When it stops
        worker.stop()
        broker.close()

    # Then its last 3 messages are in the minute's activity all the same
    found = activity(settings, datetime.now(UTC), minutes=5)
    assert sum(v or 0 for v in found.processed) == 3

"""Acknowledgements gathered and written in batches by the Redis broker (issue 17, item 2),
against the real Redis and a private one that a test stops and starts again."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis

from gcmc_jobs.brokers import build_broker
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.middleware.stores.bundle import Stores
from gcmc_jobs.redis_keys import acks_key
from gcmc_jobs.settings import Settings
from tests.support.services import RedisServer

#: Longer than any test: a batch is written only when flushed.
NEVER_MS = 600_000


def _message() -> dramatiq.Message[object]:
    return dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})


def _cleanup(client: redis.Redis, namespace: str) -> None:
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def namespace(gcmc_redis_url: str) -> Iterator[str]:
    name = f"gcmc_test_acks_{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(gcmc_redis_url)
    _cleanup(client, name)
    client.close()


def _fetch(broker: RedisBroker, count: int) -> tuple[object, list[object]]:
    consumer = broker.consume("q", prefetch=count, timeout=100)
    return consumer, [next(m for m in consumer if m is not None) for _ in range(count)]


def _unacked(broker: RedisBroker, namespace: str) -> tuple[int, int]:
    """(message bodies left in the queue's hash, ids in this worker's unacknowledged set)."""
    client = broker.client
    return (
        int(client.hlen(f"{namespace}:q.msgs")),
        int(client.scard(acks_key(namespace, broker.broker_id, "q"))),
    )


def test_acknowledgements_wait_for_their_batch_then_are_written_together(
    gcmc_redis_url: str, namespace: str
) -> None:
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace, ack_batch_ms=NEVER_MS)
    try:
        broker.declare_queue("q")
        for _ in range(5):
            broker.enqueue(_message())
        consumer, received = _fetch(broker, 5)
        for message in received:
            consumer.ack(message)  # type: ignore[attr-defined]

        # Handed to the batch: the worker thread did not wait for Redis, nothing written yet
        assert _unacked(broker, namespace) == (5, 5)
        assert consumer.outstanding_message_count == 0  # type: ignore[attr-defined]

        assert broker.flush_acks() is True
        assert _unacked(broker, namespace) == (0, 0)
        consumer.close()  # type: ignore[attr-defined]
    finally:
        broker.close()


def test_closing_the_consumer_writes_its_batch(gcmc_redis_url: str, namespace: str) -> None:
    # A graceful stop (Dramatiq closes each consumer) leaves nothing to run twice.
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace, ack_batch_ms=NEVER_MS)
    try:
        broker.declare_queue("q")
        for _ in range(3):
            broker.enqueue(_message())
        consumer, received = _fetch(broker, 3)
        for message in received:
            consumer.ack(message)  # type: ignore[attr-defined]
        assert _unacked(broker, namespace) == (3, 3)

        consumer.close()  # type: ignore[attr-defined]

        assert _unacked(broker, namespace) == (0, 0)
    finally:
        broker.close()


def test_a_forked_process_writes_its_acknowledgements_from_a_thread_of_its_own(
    gcmc_redis_url: str, namespace: str
) -> None:
    # Given a broker whose batch thread runs in this process (one acknowledgement written)
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace, ack_batch_ms=NEVER_MS)
    try:
        broker.declare_queue("q")
        for _ in range(2):
            broker.enqueue(_message())
        consumer, (first, second) = _fetch(broker, 2)
        consumer.ack(first)  # type: ignore[attr-defined]
        assert broker.flush_acks(timeout=30) is True
        assert _unacked(broker, namespace) == (1, 1)

        # When a forked child (as Dramatiq forks its worker processes) acknowledges the
        # second: the parent's thread does not exist in it
        child = os.fork()
        if child == 0:  # pragma: no cover (the child's exit status is the result)
            try:
                consumer.ack(second)  # type: ignore[attr-defined]
                os._exit(0 if broker.flush_acks(timeout=30) else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(child, 0)

        # Then the child started a batch thread of its own, which wrote it
        assert os.waitstatus_to_exitcode(status) == 0
        assert _unacked(broker, namespace) == (0, 0)
    finally:
        broker.close()


def test_without_batching_each_acknowledgement_is_written_at_once(
    gcmc_redis_url: str, namespace: str
) -> None:
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace, ack_batch_ms=0)
    try:
        broker.declare_queue("q")
        broker.enqueue(_message())
        consumer, [message] = _fetch(broker, 1)
        consumer.ack(message)  # type: ignore[attr-defined]
        assert _unacked(broker, namespace) == (0, 0)
        consumer.close()  # type: ignore[attr-defined]
    finally:
        broker.close()
    with pytest.raises(ValueError, match="ack_batch_ms"):
        RedisBroker(url=gcmc_redis_url, namespace=namespace, ack_batch_ms=-1)


def test_a_batch_redis_could_not_take_is_written_once_it_is_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", durable=True).start()
    namespace = "acks_outage"
    broker = RedisBroker(url=server.url, namespace=namespace, ack_batch_ms=20)
    try:
        broker.declare_queue("q")
        for _ in range(3):
            broker.enqueue(_message())
        consumer, received = _fetch(broker, 3)

        server.stop()
        for message in received:
            consumer.ack(message)  # type: ignore[attr-defined]
        assert broker.flush_acks(timeout=0.5) is False  # Redis is down: kept, retried
        server.start()

        assert broker.flush_acks(timeout=30) is True
        assert _unacked(broker, namespace) == (0, 0)
    finally:
        broker.close()
        server.kill()


def test_the_configured_broker_batches_as_the_setting_says(gcmc_redis_url: str) -> None:
    for value in (0, 25):
        settings = Settings(broker_url=gcmc_redis_url, broker_ack_batch_ms=value)
        stores = Stores.stubs()
        try:
            broker = build_broker(settings, stores)
            assert isinstance(broker, RedisBroker)
            assert broker.ack_batch_ms == value
            assert (broker._ack_batcher is None) is (value == 0)
            broker.close()
        finally:
            stores.close()

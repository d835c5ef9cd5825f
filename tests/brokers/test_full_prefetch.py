"""The Redis consumer while its prefetch is full (issue 17, item 2): it waits for the worker
threads' acknowledgements instead of sleeping Dramatiq's empty-queue backoff, and the wait
is not counted as a miss. Against the real Redis; the consumer runs in a thread of its own,
as in a worker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis

from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.redis_keys import acks_key

#: The consumer's timeout (ms) in the tests that wait for a wake-up: a wake-up that never
#: comes ends the wait after it with None, which fails the test (not a timing assertion).
LONG_MS = 30_000


@pytest.fixture
def namespace(gcmc_redis_url: str) -> Iterator[str]:
    name = f"gcmc_test_full_{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=f"{name}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _broker(url: str, namespace: str, ack_batch_ms: int = 10, **options: Any) -> RedisBroker:
    built = RedisBroker(url=url, namespace=namespace, ack_batch_ms=ack_batch_ms, **options)
    built.declare_queue("q")
    return built


def _send(broker: RedisBroker, count: int, delay: int | None = None) -> list[str]:
    return [
        broker.enqueue(
            dramatiq.Message(queue_name="q", actor_name="a", args=(n,), kwargs={}, options={}),
            delay=delay,
        ).message_id
        for n in range(count)
    ]


class _NextInThread:
    """``next(consumer)`` in a thread of its own (the worker's consumer thread)."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.result: Any = "not returned"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = next(self.consumer)

    def until_waiting(self, waits: int = 1) -> None:
        """Return once the consumer counted its wait for a free slot (a bound against a
        hang, not a timing assertion)."""
        deadline = time.monotonic() + 60
        while self.consumer.full_waits < waits:
            assert self.thread.is_alive(), f"returned {self.result!r} without waiting"
            assert time.monotonic() < deadline, "the consumer never waited"
            time.sleep(0.001)

    def join(self) -> Any:
        self.thread.join()
        return self.result


class _Fetches(dramatiq.Middleware):
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def after_fetch(self, broker: dramatiq.Broker, messages: Any) -> None:
        self.batches.append([m.message_id for m in messages])


@pytest.mark.parametrize(
    ("settle", "ack_batch_ms"),
    [("ack", 10), ("ack", 0), ("nack", 10)],
    ids=["batched-ack", "ack-at-once", "nack"],
)
def test_with_prefetch_1_the_next_message_comes_once_the_first_is_settled_without_a_miss(
    gcmc_redis_url: str, namespace: str, settle: str, ack_batch_ms: int
) -> None:
    # Given two messages and a consumer allowed one at a time, holding the first
    broker = _broker(gcmc_redis_url, namespace, ack_batch_ms)
    try:
        first_id, second_id = _send(broker, 2)
        consumer = broker.consume("q", prefetch=1, timeout=LONG_MS)
        first = next(consumer)
        assert first.message_id == first_id

        # When the consumer looks for more while it is full, and the first is then settled
        waiting = _NextInThread(consumer)
        waiting.until_waiting()
        getattr(consumer, settle)(first)

        # Then the wait ends with the second message: no backoff sleep, no miss counted
        second = waiting.join()
        assert second is not None
        assert second.message_id == second_id
        assert (consumer.misses, consumer.full_waits) == (0, 1)
        consumer.ack(second)
        consumer.close()
        assert broker.client.hlen(f"{namespace}:q.msgs") == 0
    finally:
        broker.close()


def test_a_full_prefetch_is_refilled_once_three_quarters_are_free_in_one_fetch(
    gcmc_redis_url: str, namespace: str
) -> None:
    # Given seven messages and a consumer holding four (its prefetch)
    broker = _broker(gcmc_redis_url, namespace)
    fetches = _Fetches()
    broker.add_middleware(fetches)
    try:
        sent = _send(broker, 7)
        consumer = broker.consume("q", prefetch=4, timeout=LONG_MS)
        held = [next(consumer) for _ in range(4)]
        assert fetches.batches == [sent[:4]]

        # When it waits, and the worker threads acknowledge one, two, then a third
        waiting = _NextInThread(consumer)
        waiting.until_waiting()
        consumer.ack(held[0])
        consumer.ack(held[1])
        assert waiting.thread.is_alive()  # two still outstanding: it keeps waiting
        consumer.ack(held[2])

        # Then the three freed slots are fetched in one call, and the next one handed out
        assert waiting.join().message_id == sent[4]
        assert fetches.batches == [sent[:4], sent[4:]]
        assert (consumer.misses, consumer.full_waits) == (0, 1)
        consumer.close()
    finally:
        broker.close()


def test_a_full_prefetch_with_nothing_settled_returns_none_after_the_timeout_not_a_miss(
    gcmc_redis_url: str, namespace: str
) -> None:
    # The worker's loop must get None now and then (to see a stop or a pause).
    broker = _broker(gcmc_redis_url, namespace)
    try:
        _send(broker, 2)
        consumer = broker.consume("q", prefetch=1, timeout=50)
        assert next(consumer) is not None
        assert next(consumer) is None
        assert (consumer.misses, consumer.full_waits) == (0, 1)
        consumer.close()
    finally:
        broker.close()


def test_an_empty_queue_still_counts_misses_and_backs_off(
    gcmc_redis_url: str, namespace: str
) -> None:
    broker = _broker(gcmc_redis_url, namespace)
    try:
        consumer = broker.consume("q", prefetch=4, timeout=50)
        assert [next(consumer), next(consumer)] == [None, None]
        assert (consumer.misses, consumer.full_waits) == (2, 0)
        consumer.close()
    finally:
        broker.close()


def test_a_full_delay_queue_consumer_keeps_dramatiqs_backoff(
    gcmc_redis_url: str, namespace: str
) -> None:
    # Its messages are acknowledged by its own thread when due, between two fetches: a wait
    # for an acknowledgement would only delay them.
    broker = _broker(gcmc_redis_url, namespace)
    try:
        _send(broker, 2, delay=60_000)
        consumer = broker.consume("q.DQ", prefetch=1, timeout=50)
        assert next(consumer) is not None
        assert next(consumer) is None
        assert (consumer.misses, consumer.full_waits) == (1, 0)
        consumer.close()
    finally:
        broker.close()


def test_closing_the_consumer_requeues_the_fetched_messages_it_did_not_hand_out(
    gcmc_redis_url: str, namespace: str
) -> None:
    # Given a consumer that fetched four messages and handed out one (the worker stopped)
    broker = _broker(gcmc_redis_url, namespace)
    try:
        sent = _send(broker, 4)
        consumer = broker.consume("q", prefetch=4, timeout=50)
        assert next(consumer).message_id == sent[0]

        # When it is closed
        consumer.close()

        # Then the other three are back on the queue at once, only the first still held
        client = broker.client
        assert client.llen(f"{namespace}:q") == 3
        assert client.scard(acks_key(namespace, broker.broker_id, "q")) == 1
        other = broker.consume("q", prefetch=4, timeout=50)
        assert [next(other).message_id for _ in range(3)] == sent[1:]
        other.close()
    finally:
        broker.close()

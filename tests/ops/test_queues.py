"""Queue statistics against real Redis and RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import pika
import pytest
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from gcmc_jobs.ops.pauses import pause_store_for
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.settings import Settings

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def redis_broker(redis_settings: Settings, gcmc_redis_url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=gcmc_redis_url, namespace=redis_settings.namespace)
    yield broker
    broker.close()


def test_redis_counts_match_what_was_enqueued(
    redis_settings: Settings, redis_broker: RedisBroker
) -> None:
    # Given 3 messages sent now and 2 with a delay, on a queue of our own
    @dramatiq.actor(broker=redis_broker, queue_name="ops_counts")
    def noop(n: int) -> None: ...

    for n in range(3):
        noop.send(n)
    for n in range(2):
        noop.send_with_options(args=(n,), delay=60_000)

    # When the stats are read
    [stats] = queue_stats(redis_settings, ["ops_counts"])

    # Then they count exactly that
    assert (stats.ready, stats.delayed, stats.in_flight, stats.dead) == (3, 2, 0, 0)
    assert stats.oldest_age_ms is not None
    assert stats.oldest_age_ms >= 0
    assert stats.paused is False


def test_redis_counts_in_flight_and_broker_dead_letters(
    redis_settings: Settings, redis_broker: RedisBroker
) -> None:
    @dramatiq.actor(broker=redis_broker, queue_name="ops_flight")
    def noop(n: int) -> None: ...

    for n in range(3):
        noop.send(n)
    consumer = redis_broker.consume("ops_flight", prefetch=2, timeout=100)
    first, second = next(consumer), next(consumer)

    [stats] = queue_stats(redis_settings, ["ops_flight"])
    assert (stats.ready, stats.in_flight, stats.dead) == (1, 2, 0)

    consumer.nack(first)
    consumer.ack(second)
    consumer.close()
    [stats] = queue_stats(redis_settings, ["ops_flight"])
    assert (stats.ready, stats.in_flight, stats.dead) == (1, 0, 1)


def test_oldest_age_is_measured_from_the_head_message(
    redis_settings: Settings, redis_broker: RedisBroker
) -> None:
    @dramatiq.actor(broker=redis_broker, queue_name="ops_age")
    def noop() -> None: ...

    sent = noop.send()
    [stats] = queue_stats(redis_settings, ["ops_age"], now_ms=sent.message_timestamp + 42_000)
    assert stats.oldest_age_ms == 42_000


def test_an_empty_queue_has_no_oldest_age(redis_settings: Settings) -> None:
    [stats] = queue_stats(redis_settings, ["ops_never_used"])
    assert (stats.ready, stats.delayed, stats.in_flight, stats.dead) == (0, 0, 0, 0)
    assert stats.oldest_age_ms is None


def test_stats_flag_paused_queues(redis_settings: Settings) -> None:
    pause_store_for(redis_settings).pause("ops_paused_flag")
    [stats] = queue_stats(redis_settings, ["ops_paused_flag"])
    assert stats.paused is True


def test_rabbitmq_counts_match_what_was_enqueued(redis_settings: Settings) -> None:
    # Given a queue of our own on the real RabbitMQ, with 4 messages now and 1 delayed
    queue = f"ops_rabbit_{uuid.uuid4().hex[:8]}"
    broker = RabbitmqBroker(url=RABBITMQ_URL, confirm_delivery=True)
    settings = Settings(
        broker_url=RABBITMQ_URL,
        redis_url=redis_settings.store_redis_url,
        namespace=redis_settings.namespace,
    )
    try:

        @dramatiq.actor(broker=broker, queue_name=queue)
        def noop(n: int) -> None: ...

        for n in range(4):
            noop.send(n)
        noop.send_with_options(args=(9,), delay=60_000)

        # When the stats are read
        [stats] = queue_stats(settings, [queue])

        # Then ready and delayed match; what AMQP cannot tell is None, not a guess
        assert (stats.ready, stats.delayed, stats.dead) == (4, 1, 0)
        assert stats.in_flight is None
        assert stats.oldest_age_ms is None
        assert stats.consumers == 0
    finally:
        broker.close()
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()


def test_a_message_that_does_not_decode_is_counted_without_an_age(
    redis_settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a body written into the queue by hand that is not a Dramatiq message
    queue = f"{redis_settings.namespace}:ops_junk"
    redis_client.hset(f"{queue}.msgs", "junk-id", b"\xff not json")
    redis_client.rpush(queue, "junk-id")

    [stats] = queue_stats(redis_settings, ["ops_junk"])

    assert stats.ready == 1
    assert stats.oldest_age_ms is None

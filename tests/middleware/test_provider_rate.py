"""ProviderRate: a provider-wide token bucket in Redis, shared by every worker; critical mail
keeps a reserved share; over the rate email is deferred, never dropped or failed."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, text

from gcmc_jobs import queue_names as queues
from gcmc_jobs.middleware.metrics import REGISTRY
from gcmc_jobs.middleware.provider_rate import ProviderRate, reserved_tokens
from gcmc_jobs.middleware.stores.provider_rate import RedisTokenBucket, StubTokenBucket
from gcmc_jobs.sending import queue_email, queue_password_reset_email
from tests.middleware.conftest import middleware_of

T0 = 1_800_000_000_000


@pytest.fixture
def bucket_namespace(gcmc_redis_url: str, gcmc_namespace: str, unique: str) -> Iterator[str]:
    namespace = f"{gcmc_namespace}:{unique}"
    yield namespace
    client = redis.Redis.from_url(gcmc_redis_url)
    client.delete(RedisTokenBucket(client, namespace=namespace).key)
    client.close()


RATE, BURST, STEPS, STEP_MS = 50.0, 10, 100, 20


def _take_in_lockstep(url: str, namespace: str, in_step: Any, granted: Any, index: int) -> None:
    """One worker: five takes per 20 ms step of the shared clock, in step with the other."""
    client = redis.Redis.from_url(url)
    bucket = RedisTokenBucket(client, namespace=namespace)
    for step in range(STEPS + 1):
        in_step.wait()
        for _ in range(5):
            wait = bucket.take(
                now_ms=T0 + step * STEP_MS, rate=RATE, burst=BURST, floor=0, waited=False
            )
            granted[index] += wait == 0
    client.close()


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_two_workers_on_their_own_connections_share_one_rate(
    workers: str, gcmc_redis_url: str, bucket_namespace: str
) -> None:
    # Given two workers (threads, or processes; each its own Redis connection) taking tokens
    # as fast as they can, in lockstep over two seconds of a shared clock (20 ms steps), at
    # 50/s with a burst of 10
    if workers == "threads":
        in_step: Any = threading.Barrier(2)
        granted: Any = [0, 0]
        runners: list[Any] = [
            threading.Thread(
                target=_take_in_lockstep,
                args=(gcmc_redis_url, bucket_namespace, in_step, granted, n),
            )
            for n in range(2)
        ]
    else:
        context = multiprocessing.get_context("fork")
        in_step = context.Barrier(2)
        granted = context.Array("i", [0, 0])
        runners = [
            context.Process(
                target=_take_in_lockstep,
                args=(gcmc_redis_url, bucket_namespace, in_step, granted, n),
            )
            for n in range(2)
        ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=60)

    # Then together they got the burst plus exactly the rate over the two seconds, each some
    assert sum(granted) == BURST + int(RATE * STEPS * STEP_MS / 1000)
    assert min(granted) > 0


@pytest.mark.parametrize("kind", ["redis", "stub"])
def test_critical_mail_keeps_its_reserved_share(
    kind: str, gcmc_redis_url: str, bucket_namespace: str
) -> None:
    client = redis.Redis.from_url(gcmc_redis_url)
    bucket = (
        RedisTokenBucket(client, namespace=bucket_namespace)
        if kind == "redis"
        else StubTokenBucket()
    )
    rate, burst = 10.0, 10
    floor = reserved_tokens(burst, 20)
    assert floor == 2

    def take(now: int, *, critical: bool, waited: bool = False) -> int:
        return bucket.take(
            now_ms=now, rate=rate, burst=burst, floor=0 if critical else floor, waited=waited
        )

    # A bulk backlog takes tokens until only the reserved share is left
    bulk = [take(T0, critical=False) for _ in range(10)]
    assert bulk[:8] == [0] * 8
    # refused ones queue up: each waits one more token's time than the one before
    assert bulk[8:] == [100, 200]
    # Password resets still get the reserved two, then wait for the next token
    assert [take(T0, critical=True) for _ in range(3)] == [0, 0, 100]
    # 100 ms later one token is back: a password reset may have it, bulk may not
    assert take(T0 + 100, critical=False, waited=True) > 0
    assert take(T0 + 100, critical=True) == 0
    client.close()


def test_other_queues_and_an_unset_rate_take_no_token() -> None:
    bucket = StubTokenBucket()
    message = dramatiq.Message(
        queue_name=queues.COMPLIANCE, actor_name="a", args=(), kwargs={}, options={}
    )
    ProviderRate(bucket, rate=1.0).before_process_message(None, message)  # type: ignore[arg-type]
    email = message.copy(queue_name=queues.EMAIL)
    ProviderRate(bucket, rate=None).before_process_message(None, email)  # type: ignore[arg-type]
    assert bucket.tokens is None  # never touched
    with pytest.raises(ValueError, match="positive"):
        ProviderRate(bucket, rate=0)


def _deferred(queue: str) -> float:
    value = REGISTRY.get_sample_value("gcmc_jobs_provider_rate_deferred_total", {"queue": queue})
    return value or 0.0


def test_over_the_rate_every_email_is_deferred_and_delivered_none_dropped_or_failed(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_outbox: list[Any],
    gcmc_db: Engine,
    gcmc_redis_url: str,
    bucket_namespace: str,
) -> None:
    # Given a provider rate of 40 emails/s, burst 5, shared in Redis
    client = redis.Redis.from_url(gcmc_redis_url)
    limiter = middleware_of(gcmc_broker, ProviderRate)
    limiter.store = RedisTokenBucket(client, namespace=bucket_namespace)
    limiter.rate, limiter.burst, limiter.reserved = 40.0, 5, reserved_tokens(5, 20)
    before = _deferred(queues.EMAIL)
    # Its clock stands still until the first deferral (so one happens however slowly this
    # machine runs the messages), then runs at the real pace
    frozen_at, started = time.time(), []

    def clock() -> float:
        if _deferred(queues.EMAIL) == before:
            return frozen_at
        if not started:
            started.append(time.time())
        return frozen_at + time.time() - started[0]

    limiter.clock = clock

    # When 30 emails and 2 password resets are sent at once
    for n in range(30):
        queue_email(
            "custom",
            f"reader{n}@example.com",
            {"tenant_name": "Acme", "subject": f"N {n}", "body": "b", "recipient_name": "R"},
            dedup_key=f"rate-{n}",
        )
    for n in range(2):
        queue_password_reset_email(
            f"user{n}@example.com",
            {"tenant_name": "Acme", "user_name": "U", "reset_url": "https://p.example/r?t=1"},
            dedup_key=f"rate-reset-{n}",
        )
    gcmc_join()

    # Then every one was delivered once, many after a deferral, none failed or dead
    assert len(gcmc_outbox) == 32
    assert _deferred(queues.EMAIL) - before > 0
    with gcmc_db.connect() as connection:
        statuses = connection.execute(text("SELECT status, count(*) FROM email_log GROUP BY 1"))
        assert dict(statuses.all()) == {"sent": 32}
        assert connection.scalar(text("SELECT count(*) FROM dead_letters")) == 0
    client.close()

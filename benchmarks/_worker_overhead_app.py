"""What ``benchmarks/worker_overhead.py``'s ``dramatiq`` workers load, by ``BENCH_MODE``:

- ``bare``: Dramatiq's RedisBroker with its default middleware, a no-op actor;
- ``bare_ours``: the same on gcmc-jobs' ``RedisBroker`` (hooks emitted only to middleware
  that implement them, broker commands on a per-thread connection), Dramatiq's default
  middleware: the stack's ratio to it is the cost of our middleware alone;
- ``stack``: gcmc-jobs' whole stack (``gcmc_jobs.configure`` from ``GCMC_JOBS_*``), a no-op
  actor and an email-shaped actor (dedup key + recipient rate limit);
- ``window``: bare Dramatiq, the no-op actor inside Dramatiq's ``WindowRateLimiter`` on one key;
- ``ours_hot``: bare Dramatiq plus only our ``RateLimits`` (Redis store), one key.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench_mw"
HOT_LIMIT = 10**9  # never reached: the limiter's cost is measured, not its deferrals


def build(mode: str, *, url: str, namespace: str) -> tuple[dramatiq.Broker, dict[str, Any]]:
    """The broker of ``mode`` with its actors (also used by the benchmark to enqueue)."""
    actors: dict[str, Any] = {}
    if mode == "stack":
        from gcmc_jobs.bootstrap import configure
        from gcmc_jobs.settings import Settings

        broker = configure(Settings(), set_global=False).broker
    elif mode == "ours_hot":
        from gcmc_jobs.middleware import RateLimits, RedisRateLimitStore

        store = RedisRateLimitStore(redis.Redis.from_url(url), namespace=namespace)
        broker = RedisBroker(url=url, namespace=namespace)
        broker.add_middleware(RateLimits(store, limit=HOT_LIMIT, window=60_000))
    elif mode == "bare_ours":
        from gcmc_jobs.brokers.redis_broker import RedisBroker as OurRedisBroker

        broker = OurRedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    else:
        broker = RedisBroker(url=url, namespace=namespace)

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def noop(n: int) -> None:
        pass

    actors["noop"] = noop
    if mode == "stack":

        @dramatiq.actor(
            broker=broker,
            queue_name=QUEUE,
            dedup_key="{kind}:{to}:{n}",
            rate_limit_key=lambda m: m.kwargs["to"].lower(),
        )
        def email(kind: str, to: str, n: int) -> None:
            pass

        actors["email"] = email
    if mode == "window":
        from dramatiq.rate_limits import WindowRateLimiter
        from dramatiq.rate_limits.backends import RedisBackend

        backend = RedisBackend(client=redis.Redis.from_url(url))
        limiter = WindowRateLimiter(backend, f"{namespace}:hot", limit=HOT_LIMIT, window=60)

        @dramatiq.actor(broker=broker, queue_name=QUEUE)
        def limited(n: int) -> None:
            with limiter.acquire():
                pass

        actors["limited"] = limited
    return broker, actors


if os.environ.get("BENCH_MODE"):
    _mode = os.environ["BENCH_MODE"]
    if _mode == "stack":
        from gcmc_jobs.logging import configure_logging
        from gcmc_jobs.settings import Settings

        _settings = Settings()
        configure_logging(_settings, buffer_ms=_settings.log_buffer_ms)  # as gcmc_jobs.worker
    broker, actors = build(
        _mode, url=os.environ["BENCH_REDIS_URL"], namespace=os.environ["BENCH_NAMESPACE"]
    )
    dramatiq.set_broker(broker)

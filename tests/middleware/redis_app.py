"""What the middleware tests' ``dramatiq`` worker processes load: gcmc-jobs configured from
``GCMC_JOBS_*`` (the whole middleware stack, Redis stores, PostgreSQL dead letters) plus the
test actors of :func:`declare`, which count their runs in Redis."""

from __future__ import annotations

from typing import Any

import dramatiq
import redis

QUEUE = "mw_redis_test"


def calls_key(namespace: str, name: str) -> str:
    """The Redis counter of the test actors' runs for ``name``."""
    return f"{namespace}:test:calls:{name}"


def fail_key(namespace: str, name: str) -> str:
    """While this Redis key exists, ``mw_fragile(name)`` raises."""
    return f"{namespace}:test:fail:{name}"


def declare(broker: dramatiq.Broker, *, redis_url: str, namespace: str) -> dict[str, Any]:
    """Declare the test actors on ``broker``; returns them by name."""
    client = redis.Redis.from_url(redis_url)

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=2, min_backoff=10, max_backoff=20)
    def mw_fragile(name: str) -> None:
        client.incr(calls_key(namespace, name))
        if client.exists(fail_key(namespace, name)):
            raise RuntimeError(f"{name} is failing")

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def mw_once(name: str) -> None:
        client.incr(calls_key(namespace, name))

    @dramatiq.actor(
        broker=broker, queue_name=QUEUE, rate_limit_key=lambda m: m.kwargs["to"].lower()
    )
    def mw_email(to: str, n: int) -> None:
        client.incr(calls_key(namespace, to.lower()))

    return {"mw_fragile": mw_fragile, "mw_once": mw_once, "mw_email": mw_email}


if __name__ != "__main__" and not __name__.endswith("conftest"):
    import os

    if os.environ.get("GCMC_JOBS_MW_TEST_WORKER") == "1":
        from gcmc_jobs.bootstrap import configure
        from gcmc_jobs.logging import configure_logging
        from gcmc_jobs.settings import Settings

        settings = Settings()
        configure_logging(settings)
        broker = configure(settings, set_global=True).broker
        actors = declare(
            broker,
            redis_url=settings.store_redis_url or "",
            namespace=settings.namespace,
        )

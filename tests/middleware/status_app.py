"""What the status tests' ``dramatiq`` worker processes load after ``gcmc_jobs.worker``: the
test actors of :func:`declare`, on the broker ``gcmc_jobs.worker`` configured."""

from __future__ import annotations

import os
import time
from typing import Any

import dramatiq
import redis

QUEUE = "status_test"


def gate_key(namespace: str, name: str) -> str:
    """While this Redis key is missing, ``status_gate(name)`` keeps running (up to 60 s)."""
    return f"{namespace}:test:gate:{name}"


def declare(broker: dramatiq.Broker, *, redis_url: str, namespace: str) -> dict[str, Any]:
    """Declare the test actors on ``broker``; returns them by name."""
    client = redis.Redis.from_url(redis_url)

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def status_ok(n: int) -> None:
        pass

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=2, min_backoff=10, max_backoff=20)
    def status_broken(n: int) -> None:
        raise RuntimeError(f"status_broken({n}) always fails")

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=0)
    def status_gate(name: str) -> None:
        deadline = time.monotonic() + 60
        while not client.exists(gate_key(namespace, name)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test never opened gate {name}")
            time.sleep(0.01)

    return {"status_ok": status_ok, "status_broken": status_broken, "status_gate": status_gate}


if os.environ.get("GCMC_JOBS_STATUS_TEST_WORKER") == "1":
    import gcmc_jobs

    _runtime = gcmc_jobs.current()
    declare(
        _runtime.broker,
        redis_url=_runtime.settings.store_redis_url or "",
        namespace=_runtime.settings.namespace,
    )

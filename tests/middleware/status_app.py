"""What the status tests' ``dramatiq`` worker processes load after ``gcmc_jobs.worker``: the
test actors of :func:`declare`, on the broker ``gcmc_jobs.worker`` configured."""

from __future__ import annotations

import os
from typing import Any

import dramatiq

QUEUE = "status_test"


def declare(broker: dramatiq.Broker) -> dict[str, Any]:
    """Declare the test actors on ``broker``; returns them by name."""

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def status_ok(n: int) -> None:
        pass

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=2, min_backoff=10, max_backoff=20)
    def status_broken(n: int) -> None:
        raise RuntimeError(f"status_broken({n}) always fails")

    return {"status_ok": status_ok, "status_broken": status_broken}


if os.environ.get("GCMC_JOBS_STATUS_TEST_WORKER") == "1":
    import gcmc_jobs

    declare(gcmc_jobs.current().broker)

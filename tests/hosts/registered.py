"""A host module for the tests: one actor and one daily job, as a host declares them.

Imported through ``GCMC_JOBS_HOST_MODULES=tests.hosts.registered``; the ``host_module``
fixture (tests/hosts/conftest.py) forgets both after each test.
"""

from __future__ import annotations

from typing import Any

import gcmc_jobs
from gcmc_jobs.scheduling import JobContext, daily_job

CALLS: list[int] = []


@gcmc_jobs.actor(queue_name="host_tests", max_retries=1, dedup_key="host:{n}")
def host_echo(n: int) -> None:
    CALLS.append(n)


@daily_job("host_nightly_count", at="00:00")
def host_nightly_count(ctx: JobContext) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "day": ctx.today.isoformat()}

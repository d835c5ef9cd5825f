"""Host registrations are process-wide: each test here forgets them afterwards, so no other
test sees a host actor among the package's or a host job in the schedule."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from gcmc_jobs import brokers
from gcmc_jobs.scheduling import jobs

MODULE = "tests.hosts.registered"


@pytest.fixture(autouse=True)
def forget_host_registrations() -> Iterator[None]:
    yield
    sys.modules.pop(MODULE, None)
    for name in [n for n, a in brokers.unconfigured.actors.items() if a.fn.__module__ == MODULE]:
        del brokers.unconfigured.actors[name]
    for name in list(jobs.host_jobs()):
        jobs.JOBS.pop(name, None)
        jobs._HOST_TIMES.pop(name, None)

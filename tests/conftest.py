"""Shared fixtures come from gcmc_jobs.testing (the plugin host applications use too); the
suite's own harness is in tests/support."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import RedisServer

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started ``redis-server`` of the test's own (never the shared one), which it may
    stop and start again; killed at the end."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()

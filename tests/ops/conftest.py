"""Fixtures of the operations tests: a Redis broker of the test's own namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from gcmc_jobs.settings import Settings


@pytest.fixture
def ops_namespace(gcmc_namespace: str) -> str:
    """A namespace of this test alone, under the session's (so the session cleans it up)."""
    return f"{gcmc_namespace}:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_settings(gcmc_postgres_url: str, gcmc_redis_url: str, ops_namespace: str) -> Settings:
    """Settings on the real Redis broker, in this test's namespace."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=ops_namespace,
        email_url="memory://",
        log_format="json",
        pause_refresh_ms=100,
        pause_delay_ms=300,
    )


@pytest.fixture
def redis_client(gcmc_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(gcmc_redis_url)
    yield client
    client.close()

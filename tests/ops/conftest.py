"""Fixtures of the operations tests: a Redis broker of the test's own namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gcmc_jobs.settings import Settings
from tests.support import WorkerProcess, dramatiq_worker


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


@pytest.fixture
def worker_process(redis_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real ``dramatiq`` worker, 2 processes of 2 threads, running tests.ops.pause_worker_app
    on the queues ops_held and ops_flowing; ready when yielded."""
    env = {
        "GCMC_JOBS_BROKER_URL": redis_settings.broker_url.get_secret_value(),
        "GCMC_JOBS_NAMESPACE": redis_settings.namespace,
        "GCMC_JOBS_DATABASE_URL": redis_settings.database_url.get_secret_value(),
        "GCMC_JOBS_PAUSE_REFRESH_MS": "100",
        "GCMC_JOBS_PAUSE_DELAY_MS": "300",
    }
    worker = dramatiq_worker(
        env,
        tmp_path / "worker.log",
        modules=("tests.ops.pause_worker_app",),
        processes=2,
        threads=2,
        queues=("ops_held", "ops_flowing"),
    )
    worker.start()
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.kill()  # the test is over: nothing to wait for in a graceful stop (~4 s)

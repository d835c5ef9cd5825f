"""Fixtures of the operations tests: a Redis broker of the test's own namespace."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

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


class OwnRedis:
    """A ``redis-server`` of this test alone, on a spare loopback port, that it may stop."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            # SHUTDOWN NOSAVE: no final save or AOF rewrite to wait for.
            # (it closes the connection as it exits; if it refuses, it is killed below)
            with contextlib.suppress(redis.ConnectionError, redis.ResponseError):
                redis.Redis.from_url(self.url).shutdown(nosave=True)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A started redis-server of the test's own (never the shared one), stopped at the end."""
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker_process(redis_settings: Settings, gcmc_redis_url: str) -> Iterator[None]:
    """A real ``dramatiq`` worker, 2 processes of 2 threads, running tests.ops.pause_worker_app."""
    env = {
        **os.environ,
        "GCMC_JOBS_BROKER_URL": gcmc_redis_url,
        "GCMC_JOBS_NAMESPACE": redis_settings.namespace,
        "GCMC_JOBS_DATABASE_URL": redis_settings.database_url.get_secret_value(),
        "GCMC_JOBS_PAUSE_REFRESH_MS": "100",
        "GCMC_JOBS_PAUSE_DELAY_MS": "300",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "tests.ops.pause_worker_app",
            "--processes",
            "2",
            "--threads",
            "2",
            "-Q",
            "ops_held",
            "ops_flowing",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)

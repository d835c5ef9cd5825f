"""The message counters live in the workers' exporters, and ``serve``'s ``/metrics`` and
``health`` say where (issue 11, item 16: ``/metrics`` of ``serve`` had no samples for them)."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from gcmc_jobs.http import create_app
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing.ports import free_port
from tests.support import WorkerProcess, dramatiq_worker, wait_until

TOKEN = "exporter-token"


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _help(text: str, name: str) -> str:
    [family] = [f for f in text_string_to_metric_families(text) if f.name == name]
    return family.documentation


@pytest.fixture
def exporting_worker(
    redis_settings: Settings, tmp_path: Path
) -> Iterator[tuple[WorkerProcess, int]]:
    """A real ``dramatiq`` worker (one process) with ``GCMC_JOBS_METRICS_PORT`` set, on the
    queue ops_flowing; ready when yielded, with the port asked for."""
    port = free_port()
    env = {
        "GCMC_JOBS_BROKER_URL": redis_settings.broker_url.get_secret_value(),
        "GCMC_JOBS_NAMESPACE": redis_settings.namespace,
        "GCMC_JOBS_DATABASE_URL": redis_settings.database_url.get_secret_value(),
        "GCMC_JOBS_METRICS_PORT": str(port),
    }
    worker = dramatiq_worker(
        env,
        tmp_path / "worker.log",
        modules=("tests.ops.pause_worker_app",),
        queues=("ops_flowing",),
    )
    worker.start()
    try:
        worker.wait_ready()
        yield worker, port
    finally:
        worker.kill()  # the test is over: nothing to wait for in a graceful stop (~4 s)


def test_the_worker_exporter_has_the_counters_and_serve_and_health_say_where(
    redis_settings: Settings,
    gcmc_db: Engine,
    gcmc_redis_url: str,
    exporting_worker: tuple[WorkerProcess, int],
) -> None:
    worker, port = exporting_worker

    # Given the worker registered with its exporter's address (health lists it)
    def registered() -> Any:
        report = check_health(redis_settings, engine=gcmc_db, checks=["workers"])
        found = report.checks["workers"].data["workers"]
        return found[0] if found else None

    listed = wait_until(
        registered, timeout_s=30, interval_s=0.1, what="the worker listed", diagnose=worker.describe
    )
    address = listed["metrics"]
    assert address in {
        f"http://{socket.gethostname()}:{p}/metrics" for p in range(port, port + 64)
    }, listed

    # When it processes one message
    sender = RedisBroker(url=gcmc_redis_url, namespace=redis_settings.namespace)
    try:
        sender.enqueue(Message("ops_flowing", "flowing", (7,), {}, {}))
    finally:
        sender.close()
    client = redis.Redis.from_url(gcmc_redis_url)
    done = f"{redis_settings.namespace}:test:done:ops_flowing"  # pause_worker_app.done_key
    try:
        wait_until(
            lambda: client.lrange(done, 0, -1) == [b"7"],
            timeout_s=30,
            interval_s=0.1,
            what="the message processed",
            diagnose=worker.describe,
        )
    finally:
        client.close()

    # Then the exporter at the registered address has the message counters
    labels = {"actor": "flowing", "queue": "ops_flowing", "state": "succeeded"}

    def scraped() -> str | None:
        with urllib.request.urlopen(address, timeout=5) as response:  # noqa: S310
            text: str = response.read().decode()
        return text if (labels, 1.0) in _samples(text, "gcmc_jobs_messages_total") else None

    wait_until(scraped, timeout_s=30, interval_s=0.1, what="the counter", diagnose=worker.describe)

    # And serve's /metrics says where the counters are: the worker's exporter, by address
    settings = redis_settings.model_copy(update={"admin_token": TOKEN})
    with TestClient(create_app(settings)) as api:
        response = api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    info = _samples(response.text, "gcmc_jobs_worker_info")
    assert [sample["metrics"] for sample, value in info if value == 1] == [address]
    assert "GCMC_JOBS_METRICS_PORT" in _help(response.text, "gcmc_jobs_worker_info")
    assert "gcmc_jobs_messages_total" in _help(response.text, "gcmc_jobs_worker_info")

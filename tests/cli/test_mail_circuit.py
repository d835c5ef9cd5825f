"""``gcmc-jobs mail-circuit``: the breaker the workers share, shown and closed by hand."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import redis
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.middleware.stores.mail_circuit import RedisCircuitStore


@pytest.fixture
def store(
    monkeypatch: pytest.MonkeyPatch, gcmc_redis_url: str, gcmc_namespace: str
) -> RedisCircuitStore:
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    namespace = f"{gcmc_namespace}:cli{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", gcmc_redis_url)
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", namespace)
    return RedisCircuitStore(redis.Redis.from_url(gcmc_redis_url), namespace=namespace)


def test_mail_circuit_shows_an_open_breaker_and_reset_closes_it(store: RedisCircuitStore) -> None:
    for _ in range(5):
        store.record_failure(
            now_ms=1_800_000_000_000,
            threshold=5,
            min_backoff_ms=5_000,
            max_backoff_ms=60_000,
            error="TransientDeliveryError: 421 busy",
        )

    shown = CliRunner().invoke(app, ["mail-circuit"])
    assert shown.exit_code == 0, shown.output
    assert "mail circuit open: email held since 2027-01-15 08:00:00Z" in shown.stdout
    assert "last error: TransientDeliveryError: 421 busy" in shown.stdout

    document = json.loads(CliRunner().invoke(app, ["mail-circuit", "--json"]).stdout)
    assert (document["enabled"], document["state"], document["trips"]) == (True, "open", 1)

    closed = CliRunner().invoke(app, ["mail-circuit", "--reset"])
    assert closed.stdout.strip() == "mail circuit closed (reset)"
    assert store.state().state == "closed"
    store.client.close()

"""The mail circuit breaker through the admin app: ``/api/mail-circuit``, the health check
and ``/metrics``, on the state the workers share in Redis."""

from __future__ import annotations

import time

import redis
from fastapi.testclient import TestClient

from gcmc_jobs.middleware.stores.mail_circuit import RedisCircuitStore
from gcmc_jobs.settings import Settings


def _trip(settings: Settings) -> RedisCircuitStore:
    client = redis.Redis.from_url(settings.store_redis_url or "")
    store = RedisCircuitStore(client, namespace=settings.namespace)
    for _ in range(settings.mail_breaker_failures):
        store.record_failure(
            now_ms=int(time.time() * 1000),
            threshold=settings.mail_breaker_failures,
            min_backoff_ms=5_000,
            max_backoff_ms=60_000,
            error="TransientDeliveryError: cannot connect",
        )
    return store


def test_an_open_breaker_shows_in_the_api_health_and_metrics_until_reset(
    api: TestClient, gcmc_settings: Settings
) -> None:
    # Given a closed breaker: all is well
    assert api.get("/api/mail-circuit").json()["state"] == "closed"
    health = api.get("/api/health").json()["checks"]["mail_circuit"]
    assert health["status"] == "ok"

    # When the mail server fails enough deliveries in a row
    store = _trip(gcmc_settings)

    # Then the API, the health check and the metrics say email is held
    body = api.get("/api/mail-circuit").json()
    assert (body["enabled"], body["state"], body["trips"]) == (True, "open", 1)
    assert body["next_probe_ms"] > body["opened_at_ms"]
    health = api.get("/api/health").json()["checks"]["mail_circuit"]
    assert health["status"] == "unhealthy"
    assert "cannot connect" in health["detail"]
    metrics = api.get("/metrics").text
    assert 'gcmc_mail_circuit_state{state="open"} 1.0' in metrics
    assert 'gcmc_mail_circuit_state{state="closed"} 0.0' in metrics
    assert "gcmc_mail_circuit_trips 1.0" in metrics

    # When an operator closes it by hand
    assert api.post("/api/mail-circuit/reset").json()["state"] == "closed"
    assert store.state().state == "closed"
    assert api.get("/api/health").json()["checks"]["mail_circuit"]["status"] == "ok"
    store.client.close()


def test_the_mail_circuit_endpoints_need_the_token(api: TestClient) -> None:
    for method, path in (("GET", "/api/mail-circuit"), ("POST", "/api/mail-circuit/reset")):
        assert api.request(method, path, headers={"Authorization": ""}).status_code == 401

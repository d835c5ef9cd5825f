"""The admin API's webhooks: register (the secret once), list, test through the workers
to a real receiver, deliveries and attempts, disable, replay, remove."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dramatiq
import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from gcmc_jobs.db.models import Tenant
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing.webhooks import WebhookReceiver


@pytest.fixture
def gcmc_settings(gcmc_settings: Settings) -> Settings:
    return gcmc_settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def test_an_endpoint_through_the_api(
    api: TestClient,
    gcmc_tenant: Tenant,
    gcmc_join: Callable[..., None],
    receiver: WebhookReceiver,
) -> None:
    # Given an endpoint registered through the API
    created = api.post(
        "/api/webhooks/endpoints",
        json={"tenant_id": gcmc_tenant.id, "url": receiver.url(), "event_types": ["*"]},
    )
    assert created.status_code == 201
    secret, endpoint = created.json()["secret"], created.json()["id"]
    [listed] = api.get("/api/webhooks/endpoints", params={"tenant_id": gcmc_tenant.id}).json()
    assert listed["url"] == receiver.url()
    assert "secret" not in listed

    # When it is tested: the workers deliver a signed webhook.test
    [delivery] = api.post(f"/api/webhooks/endpoints/{endpoint}/test").json()["deliveries"]
    gcmc_join()
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"
    [shown] = api.get("/api/webhooks/deliveries", params={"status": "succeeded"}).json()
    assert shown["id"] == delivery
    [attempt] = api.get(f"/api/webhooks/deliveries/{delivery}/attempts").json()
    assert (attempt["status_code"], attempt["response_body"]) == (200, "ok")

    # And disabled, a replay fails it at once; enabled again, replaying all failed resends it
    assert api.post(f"/api/webhooks/endpoints/{endpoint}/disable").json()["changed"] is True
    assert api.post(f"/api/webhooks/deliveries/{delivery}/replay").json() == {
        "deliveries": [delivery]
    }
    gcmc_join()
    assert len(receiver.requests) == 1
    assert api.post(f"/api/webhooks/endpoints/{endpoint}/enable").json()["enabled"] is True
    replayed = api.post("/api/webhooks/deliveries/replay", params={"endpoint_id": endpoint})
    assert replayed.json() == {"deliveries": [delivery]}
    gcmc_join()
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]

    # Finally removed
    assert api.delete(f"/api/webhooks/endpoints/{endpoint}").status_code == 200
    assert api.delete(f"/api/webhooks/endpoints/{endpoint}").status_code == 404
    assert api.get("/api/webhooks/endpoints").json() == []


def test_a_bad_endpoint_is_a_422_naming_the_problem(
    api: TestClient, gcmc_tenant: Tenant, gcmc_broker: dramatiq.Broker
) -> None:
    answer = api.post(
        "/api/webhooks/endpoints",
        json={"tenant_id": gcmc_tenant.id, "url": "ftp://x.example", "event_types": ["*"]},
    )
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert "http:// or https://" in problem["msg"]

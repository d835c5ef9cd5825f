"""``/api/queues/{queue}/messages``: list, show, cancel and promote live messages through the
admin API on the real Redis broker; on RabbitMQ a 501 saying why, with the counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from fastapi.testclient import TestClient

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.http import create_app
from gcmc_jobs.settings import Settings
from tests.http.conftest import TOKEN

QUEUE = "api_live"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def redis_api_settings(gcmc_settings: Settings, gcmc_redis_url: str) -> Settings:
    return gcmc_settings.model_copy(update={"broker_url": gcmc_redis_url, "outbox_relay": False})


@pytest.fixture
def sent(redis_api_settings: Settings) -> Iterator[dict[str, Any]]:
    """A ready message with a secret, one of tenant 7, and a delayed one; no worker runs."""
    with configured(redis_api_settings) as runtime:

        @dramatiq.actor(broker=runtime.broker, queue_name=QUEUE)
        def api_work(n: int, tenant_id: int | None = None, api_key: str = "") -> None:
            pass

        yield {
            "secret": api_work.send(1, api_key="sk-live-123"),
            "tenant": api_work.send(2, tenant_id=7),
            "delayed": api_work.send_with_options(args=(3,), delay=3_600_000),
        }


@pytest.fixture
def live_api(redis_api_settings: Settings, sent: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(
        create_app(redis_api_settings), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


def test_list_pages_and_filters(live_api: TestClient, sent: dict[str, Any]) -> None:
    first = live_api.get(f"/api/queues/{QUEUE}/messages", params={"limit": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["ready"], body["delayed"]) == (2, 1)
    rest = live_api.get(
        f"/api/queues/{QUEUE}/messages", params={"cursor": body["next_cursor"]}
    ).json()
    ids = [m["message_id"] for m in body["messages"] + rest["messages"]]
    assert ids == [sent[k].message_id for k in ("secret", "tenant", "delayed")]
    assert rest["next_cursor"] is None

    tenant = live_api.get(f"/api/queues/{QUEUE}/messages", params={"tenant_id": "7"}).json()
    assert [m["message_id"] for m in tenant["messages"]] == [sent["tenant"].message_id]


def test_a_bad_cursor_is_422(live_api: TestClient) -> None:
    response = live_api.get(f"/api/queues/{QUEUE}/messages", params={"cursor": "nonsense"})
    assert response.status_code == 422
    assert "not a cursor" in response.json()["detail"]


def test_show_masks_secrets_and_404s_an_unknown_id(
    live_api: TestClient, sent: dict[str, Any]
) -> None:
    shown = live_api.get(f"/api/queues/{QUEUE}/messages/{sent['secret'].message_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["kwargs"] == {"api_key": "***"}
    assert "sk-live-123" not in shown.text
    assert shown.json()["status"]["state"] == "enqueued"

    missing = live_api.get(f"/api/queues/{QUEUE}/messages/{uuid.uuid4()}")
    assert missing.status_code == 404


def test_cancel_and_promote(live_api: TestClient, sent: dict[str, Any]) -> None:
    base = f"/api/queues/{QUEUE}/messages"
    dry = live_api.post(
        f"{base}/cancel", json={"message_ids": [sent["tenant"].message_id], "dry_run": True}
    )
    assert [r["status"] for r in dry.json()] == ["would_cancel"]

    cancel = live_api.post(f"{base}/cancel", json={"message_ids": [sent["tenant"].message_id]})
    promote = live_api.post(f"{base}/promote", json={"message_ids": [sent["delayed"].message_id]})

    assert cancel.status_code == 200, cancel.text
    assert [(r["status"], r["state"]) for r in cancel.json()] == [("cancelled", "ready")]
    assert [r["status"] for r in promote.json()] == ["promoted"]
    after = live_api.get(base).json()
    assert [(m["message_id"], m["state"]) for m in after["messages"]] == [
        (sent["secret"].message_id, "ready"),
        (sent["delayed"].message_id, "ready"),
    ]


def test_cancel_needs_ids(live_api: TestClient) -> None:
    response = live_api.post(f"/api/queues/{QUEUE}/messages/cancel", json={"message_ids": []})
    assert response.status_code == 422


def test_on_rabbitmq_listing_is_501_with_the_counts(gcmc_settings: Settings) -> None:
    settings = gcmc_settings.model_copy(update={"broker_url": RABBITMQ_URL})
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        response = client.get(f"/api/queues/{QUEUE}/messages")

    assert response.status_code == 501
    detail = response.json()["detail"]
    assert "RabbitMQ cannot list" in detail
    assert f"{QUEUE!r} holds 0 ready" in detail


def test_health_runs_only_the_checks_asked_for(live_api: TestClient) -> None:
    response = live_api.get("/api/health", params=[("check", "redis"), ("check", "workers")])
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {"redis", "workers"}
    assert checks["redis"]["used_memory_bytes"] > 0
    assert checks["workers"]["workers"] == []
    assert live_api.get("/api/health", params={"check": "nonsense"}).status_code == 422

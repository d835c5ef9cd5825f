"""``GET /api/messages/{message_id}``: a message's status through the admin API."""

from __future__ import annotations

import dramatiq
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.http import create_app
from gcmc_jobs.settings import Settings
from tests.http.conftest import TOKEN

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def test_a_sent_message_status_is_answered(api: TestClient, gcmc_broker: dramatiq.Broker) -> None:
    refresh = gcmc_broker.get_actor("refresh_compliance")
    message = refresh.send(1)

    response = api.get(f"/api/messages/{message.message_id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["message_id"], body["state"], body["actor"], body["attempts"]) == (
        message.message_id,
        "enqueued",
        "refresh_compliance",
        1,
    )
    assert body["enqueued_at"] is not None


def test_an_unknown_message_is_404_saying_why(api: TestClient) -> None:
    response = api.get(f"/api/messages/{UNKNOWN_ID}")

    assert response.status_code == 404
    assert "unknown message" in response.json()["detail"]


def test_something_that_is_no_message_id_is_refused(api: TestClient) -> None:
    assert api.get("/api/messages/not%20an%20id").status_code == 422


def test_the_route_needs_the_token(api: TestClient) -> None:
    response = api.get(f"/api/messages/{UNKNOWN_ID}", headers={"Authorization": ""})
    assert response.status_code == 401


def test_on_the_stub_broker_without_redis_the_runtime_records_answer(
    gcmc_settings: Settings, gcmc_db: Engine
) -> None:
    # The embedded demo: no Redis, the records live in this process's runtime.
    settings = gcmc_settings.model_copy(update={"redis_url": None})
    with configured(settings, engine=gcmc_db) as runtime:
        message = runtime.broker.get_actor("refresh_compliance").send(1)
        client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"})

        response = client.get(f"/api/messages/{message.message_id}")

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "enqueued"

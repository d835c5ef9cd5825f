"""With Redis down, the API says the service is unavailable (503), never a server error."""

from __future__ import annotations

import dramatiq
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gcmc_jobs.http import create_app
from gcmc_jobs.settings import Settings
from tests.http.conftest import TOKEN
from tests.support import RedisServer


def test_queues_and_readiness_answer_503_while_redis_is_down(
    own_redis: RedisServer, gcmc_settings: Settings, gcmc_broker: dramatiq.Broker
) -> None:
    settings = gcmc_settings.model_copy(update={"broker_url": SecretStr(own_redis.url)})
    client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.get("/api/queues").status_code == 200

    own_redis.stop()
    assert client.get("/api/queues").status_code == 503
    assert client.post("/api/queues/gcmc_email/pause").status_code == 503
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"] == "unhealthy"

    own_redis.start()
    assert client.get("/api/queues").status_code == 200

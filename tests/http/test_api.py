"""The admin API: auth, queues, pause, dead letters, runs, schedules, trigger, metrics."""

from __future__ import annotations

from datetime import date

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs import queue_names as queues
from gcmc_jobs.db.models import JobRun, JobRunStatus
from gcmc_jobs.http import create_app
from gcmc_jobs.ops.pauses import pause_store_for
from gcmc_jobs.settings import Settings
from tests import factories
from tests.http.conftest import add_dead_letter

DATA_ENDPOINTS = [
    ("GET", "/api/queues"),
    ("GET", "/api/health"),
    ("POST", "/api/queues/gcmc_email/pause"),
    ("GET", "/api/dead-letters"),
    ("POST", "/api/dead-letters/1/replay"),
    ("POST", "/api/dead-letters/purge"),
    ("GET", "/api/runs"),
    ("GET", "/api/schedules"),
    ("GET", "/api/messages/00000000-0000-4000-8000-000000000000"),
    ("GET", "/api/webhooks/endpoints"),
    ("GET", "/api/webhooks/deliveries"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), DATA_ENDPOINTS)
def test_data_endpoints_answer_401_without_a_token(api: TestClient, method: str, path: str) -> None:
    response = api.request(method, path, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), DATA_ENDPOINTS)
def test_data_endpoints_answer_403_with_a_wrong_token(
    bare_api: TestClient, method: str, path: str
) -> None:
    response = bare_api.request(method, path, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 403


def test_without_a_configured_token_data_is_refused_and_liveness_stays_open(
    gcmc_settings: Settings, gcmc_broker: dramatiq.Broker
) -> None:
    settings = gcmc_settings.model_copy(update={"admin_token": None})
    client = TestClient(create_app(settings))
    response = client.get("/api/queues", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503
    assert "GCMC_JOBS_ADMIN_TOKEN" in response.json()["detail"]
    assert client.get("/health/live").json() == {"status": "ok"}


def test_probes_are_open(api: TestClient) -> None:
    assert api.get("/health/live", headers={"Authorization": ""}).status_code == 200
    ready = api.get("/health/ready", headers={"Authorization": ""})
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert (checks["broker"], checks["database"]) == ("ok", "ok")
    assert checks["redis"] in ("ok", "warning")  # the test Redis may run without persistence


def test_queues_count_what_was_enqueued(api: TestClient, gcmc_broker: dramatiq.Broker) -> None:
    refresh = gcmc_broker.get_actor("refresh_compliance")
    for tenant_id in (1, 2, 3):
        refresh.send(tenant_id)
    body = {q["name"]: q for q in api.get("/api/queues").json()}
    assert body[queues.COMPLIANCE]["ready"] == 3
    assert body[queues.EMAIL]["ready"] == 0


def test_pause_and_resume_through_the_api(api: TestClient, gcmc_settings: Settings) -> None:
    assert api.post("/api/queues/gcmc_email/pause").json() == {
        "queue": "gcmc_email",
        "paused": True,
        "changed": True,
    }
    assert "gcmc_email" in pause_store_for(gcmc_settings).paused()
    body = {q["name"]: q for q in api.get("/api/queues").json()}
    assert body["gcmc_email"]["paused"] is True
    assert api.post("/api/queues/gcmc_email/resume").json()["changed"] is True
    assert "gcmc_email" not in pause_store_for(gcmc_settings).paused()


def test_pausing_an_unknown_queue_is_a_404(api: TestClient) -> None:
    response = api.post("/api/queues/no_such_queue/pause")
    assert response.status_code == 404
    assert "gcmc_email" in response.json()["detail"]


def test_dead_letters_list_show_replay_and_purge(
    api: TestClient, gcmc_db: Engine, gcmc_broker: dramatiq.Broker
) -> None:
    dead_id = add_dead_letter(gcmc_db)

    [listed] = api.get("/api/dead-letters").json()
    assert listed["id"] == dead_id
    assert listed["replayed_at"] is None
    shown = api.get(f"/api/dead-letters/{dead_id}").json()
    assert shown["args"] == [1]
    assert shown["actor"] == "refresh_compliance"

    replayed = api.post(f"/api/dead-letters/{dead_id}/replay")
    assert replayed.status_code == 200
    assert gcmc_broker.queues[queues.COMPLIANCE].qsize() == 1
    assert (
        api.get(f"/api/dead-letters/{dead_id}").json()["replayed_as"]
        == (replayed.json()["replayed_as"])
    )
    assert api.post(f"/api/dead-letters/{dead_id}/replay").status_code == 409

    assert api.post("/api/dead-letters/purge?older_than_ms=0").json() == {"purged": 1}
    assert api.get("/api/dead-letters").json() == []


def test_an_unknown_dead_letter_is_a_404(api: TestClient) -> None:
    assert api.get("/api/dead-letters/999999").status_code == 404
    assert api.post("/api/dead-letters/999999/replay").status_code == 404


def test_runs_schedules_and_trigger(
    api: TestClient, gcmc_session: Session, gcmc_broker: dramatiq.Broker
) -> None:
    tenant = factories.tenant(gcmc_session, timezone="Europe/Paris")
    gcmc_session.add(
        JobRun(
            job="compliance_refresh",
            tenant_id=tenant.id,
            local_date=date(2026, 3, 10),
            status=JobRunStatus.SUCCEEDED,
            stats={"clients": 4},
        )
    )
    gcmc_session.commit()

    [run] = api.get(f"/api/runs?tenant_id={tenant.id}").json()
    assert (run["job"], run["status"], run["stats"]) == (
        "compliance_refresh",
        "succeeded",
        {"clients": 4},
    )
    schedules = api.get("/api/schedules").json()
    assert {s["job"] for s in schedules} == set(Settings().job_times)
    assert all(s["timezone"] == "Europe/Paris" for s in schedules)

    response = api.post("/api/jobs/filing_reminders/run", json={"tenant_id": tenant.id})
    assert response.status_code == 200
    assert gcmc_broker.queues[queues.SCHEDULED].qsize() == 1
    assert api.post("/api/jobs/nope/run", json={"tenant_id": tenant.id}).status_code == 404
    assert api.post("/api/jobs/filing_reminders/run", json={"tenant_id": 99999}).status_code == 404


def test_metrics_expose_queue_gauges(api: TestClient, gcmc_broker: dramatiq.Broker) -> None:
    gcmc_broker.get_actor("refresh_compliance").send(1)
    text = api.get("/metrics").text
    assert 'gcmc_queue_messages{queue="gcmc_compliance",state="ready"} 1.0' in text


def test_the_openapi_document_declares_bearer_auth(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    assert "/api/dead-letters/{id}/replay" in document["paths"]
    assert any("HTTPBearer" in s for s in document["components"]["securitySchemes"])


def test_mounted_under_a_prefix_the_dashboard_calls_the_api_there(
    gcmc_settings: Settings, gcmc_broker: dramatiq.Broker
) -> None:
    from fastapi import FastAPI

    host = FastAPI()
    host.mount("/jobs", create_app(gcmc_settings))
    client = TestClient(host)

    page = client.get("/jobs/dashboard")
    assert page.status_code == 200
    assert 'data-base="/jobs"' in page.text
    assert client.get("/jobs/dashboard/app.js").status_code == 200
    headers = {"Authorization": "Bearer test-admin-token"}
    assert client.get("/jobs/api/queues", headers=headers).status_code == 200

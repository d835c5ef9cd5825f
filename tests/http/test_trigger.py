"""``POST /api/jobs/{job}/run``: the scheduler's and the CLI's dedup key, and ``force``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.cli import app as cli
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import JobRun, JobRunStatus
from gcmc_jobs.scheduling.clock import local_date
from gcmc_jobs.scheduling.run_messages import run_key
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.scheduling.tick import tick
from gcmc_jobs.services.tenancy import tenant_zone
from gcmc_jobs.settings import Settings
from tests import factories as f

JOB = "filing_reminders"


@pytest.fixture
def tenant_id(gcmc_session: Session) -> int:
    tenant = f.tenant(gcmc_session, "Tokyo", timezone="Asia/Tokyo")
    gcmc_session.commit()
    return tenant.id


def _today() -> str:
    """The tenant's (Tokyo's) local date now."""
    return local_date(datetime.now(UTC), tenant_zone("Asia/Tokyo")).isoformat()


def test_a_second_trigger_without_force_is_a_duplicate(
    api: TestClient, gcmc_broker: dramatiq.Broker, tenant_id: int
) -> None:
    first = api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": tenant_id})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["dedup_key"] == f"job_run:{JOB}:{tenant_id}:{_today()}"
    assert (body["local_date"], body["force"]) == (_today(), False)

    second = api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": tenant_id})
    assert second.status_code == 409
    assert body["dedup_key"] in second.json()["detail"]

    forced = api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": tenant_id, "force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["dedup_key"] is None
    assert gcmc_broker.queues[queues.SCHEDULED].qsize() == 2


def test_a_trigger_after_the_cli_enqueued_the_run_is_a_duplicate(
    api: TestClient,
    gcmc_settings: Settings,
    tenant_id: int,
    gcmc_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given `gcmc-jobs run --enqueue` sent today's run to a Redis broker whose deduplication
    # keys live in the same namespace as the API's
    for name, value in {
        "DATABASE_URL": gcmc_settings.database_url.get_secret_value(),
        "BROKER_URL": gcmc_redis_url,
        "REDIS_URL": gcmc_redis_url,
        "NAMESPACE": gcmc_settings.namespace,
        "EMAIL_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(f"GCMC_JOBS_{name}", value)
    result = CliRunner().invoke(cli, ["run", JOB, "--tenant", str(tenant_id), "--enqueue"])
    assert result.exit_code == 0, result.output
    assert f"enqueued 1 {JOB} message(s)" in result.output

    # When the API triggers the same run, it is refused as the same key
    response = api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": tenant_id})
    assert response.status_code == 409
    assert f"job_run:{JOB}:{tenant_id}:{_today()}" in response.json()["detail"]

    # And the CLI again, after the API: already pending too
    result = CliRunner().invoke(cli, ["run", JOB, "--tenant", str(tenant_id), "--enqueue"])
    assert "enqueued 0" in result.output
    assert "1 already pending" in result.output


def test_a_trigger_after_the_tick_enqueued_the_run_is_a_duplicate(
    api: TestClient, gcmc_broker: dramatiq.Broker, gcmc_db: Engine, tenant_id: int
) -> None:
    now = datetime.now(UTC)
    result = tick(
        gcmc_db,
        gcmc_broker,
        now=now,
        job_times={JOB: time(0, 0)},  # due all day long
        make_message=run_daily_job.message_with_options,
    )
    [run] = result.due
    assert result.enqueued == 1

    response = api.post(
        f"/api/jobs/{JOB}/run",
        json={"tenant_id": tenant_id, "local_date": run.local_date.isoformat()},
    )
    assert response.status_code == 409
    assert run_key(JOB, tenant_id, run.local_date) in response.json()["detail"]


def _started_at(engine: Engine) -> datetime | None:
    with session_scope(engine) as session:
        row = session.scalars(select(JobRun)).one()
        assert row.status is JobRunStatus.SUCCEEDED
        return row.started_at


def test_force_re_runs_a_succeeded_run_and_a_plain_trigger_does_not(
    api: TestClient,
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    tenant_id: int,
) -> None:
    # Given today's run already succeeded (started at a known instant)
    day = _today()
    earlier = datetime(2020, 1, 1, tzinfo=UTC)
    ran = run_for_tenant(gcmc_db, JOB, tenant_id, local_date=date.fromisoformat(day), now=earlier)
    assert ran.ran

    # When the API triggers it without force, the worker finds it done and leaves it
    plain = {"tenant_id": tenant_id, "local_date": day}
    assert api.post(f"/api/jobs/{JOB}/run", json=plain).status_code == 200
    gcmc_broker.join(queues.SCHEDULED)
    gcmc_worker.join()
    assert _started_at(gcmc_db) == earlier

    # When it triggers it with force, the worker runs it again
    forced = api.post(f"/api/jobs/{JOB}/run", json={**plain, "force": True})
    assert forced.status_code == 200, forced.text
    gcmc_broker.join(queues.SCHEDULED)
    gcmc_worker.join()
    assert _started_at(gcmc_db) != earlier


def test_triggering_an_unknown_job_or_tenant_is_a_404(api: TestClient, tenant_id: int) -> None:
    unknown_job = api.post("/api/jobs/nope/run", json={"tenant_id": tenant_id})
    assert unknown_job.status_code == 404
    assert JOB in unknown_job.json()["detail"]
    unknown_tenant = api.post(f"/api/jobs/{JOB}/run", json={"tenant_id": 99999})
    assert unknown_tenant.status_code == 404
    assert "no tenant with id 99999" in unknown_tenant.json()["detail"]

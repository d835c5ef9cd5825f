"""Issue 11, item 9: one tenant whose timezone is not an IANA name is reported by id and
name on every path, and every other tenant is served: tick, run, run --enqueue, schedules,
runs, health and the API. The tenant with the bad zone sits *between* two good ones, so a
path that stops at it leaves the one after it unserved."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from structlog.testing import capture_logs
from typer.testing import CliRunner

from gcmc_jobs.actors import run_daily_job
from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import JobRun
from gcmc_jobs.http import create_app
from gcmc_jobs.ops.health import check_health
from gcmc_jobs.scheduling.tick import tick
from gcmc_jobs.settings import DEFAULT_JOB_TIMES, Settings
from tests import factories as f

NOON = datetime(2026, 6, 1, 12, tzinfo=UTC)
TOKEN = "bad-zone-token"


@pytest.fixture
def tenants(gcmc_db: Engine) -> dict[str, int]:
    with session_scope(gcmc_db) as session:
        first = f.tenant(session, "First Ltd")
        typo = f.tenant(session, "Typo Ltd", timezone="Europe/Pariss")
        last = f.tenant(session, "Last Ltd", timezone="Asia/Kolkata")
        return {"first": first.id, "typo": typo.id, "last": last.id}


def _names_typo(text: str, tenants: dict[str, int]) -> bool:
    return f"tenant {tenants['typo']} (Typo Ltd)" in text and "Europe/Pariss" in text


def test_the_tick_serves_the_others_and_reports_the_bad_tenant(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, tenants: dict[str, int]
) -> None:
    with capture_logs() as logs:
        result = tick(
            gcmc_db,
            gcmc_broker,
            now=NOON,
            job_times=DEFAULT_JOB_TIMES,
            make_message=run_daily_job.message_with_options,
        )
    assert {run.tenant_id for run in result.due} == {tenants["first"], tenants["last"]}
    assert [(p.tenant_id, p.tenant_name) for p in result.problems] == [
        (tenants["typo"], "Typo Ltd")
    ]
    [logged] = [e for e in logs if e["event"] == "schedule.bad_timezone"]
    assert (logged["tenant_id"], logged["tenant"]) == (tenants["typo"], "Typo Ltd")


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    gcmc_postgres_url: str,
    gcmc_redis_url: str,
    gcmc_namespace: str,
) -> None:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.setenv("GCMC_JOBS_EMAIL_URL", "memory://")
    monkeypatch.setenv("GCMC_JOBS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", f"{gcmc_namespace}:tz{uuid.uuid4().hex[:6]}")
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_run_runs_every_other_tenant_and_names_the_bad_one(
    cli_env: None, gcmc_db: Engine, tenants: dict[str, int]
) -> None:
    code, out, err = _invoke("run", "compliance_refresh")
    assert code == 1
    assert "compliance_refresh: 2 ran" in out
    assert _names_typo(err, tenants)
    with session_scope(gcmc_db) as session:
        ran = set(session.scalars(select(JobRun.tenant_id)))
    assert ran == {tenants["first"], tenants["last"]}


def test_run_enqueue_enqueues_every_other_tenant_and_names_the_bad_one(
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    gcmc_redis_url: str,
    gcmc_db: Engine,
    tenants: dict[str, int],
) -> None:
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", gcmc_redis_url)
    code, out, err = _invoke("run", "compliance_refresh", "--enqueue")
    assert code == 1
    assert "enqueued 2 compliance_refresh message(s)" in out
    assert _names_typo(err, tenants)


def test_tick_command_runs_the_others_and_names_the_bad_one(
    cli_env: None, gcmc_db: Engine, tenants: dict[str, int]
) -> None:
    code, out, err = _invoke("tick", "--now", NOON.isoformat())
    assert code == 1
    assert f"{2 * len(DEFAULT_JOB_TIMES)} due" in out
    assert _names_typo(err, tenants)


def test_schedules_and_runs_list_every_tenant_with_the_bad_ones_problem(
    cli_env: None, gcmc_db: Engine, tenants: dict[str, int]
) -> None:
    code, out, _ = _invoke("schedules", "--json", "--now", NOON.isoformat())
    assert code == 0
    rows = json.loads(out)
    problems = {row["tenant_id"]: row["problem"] for row in rows}
    assert set(problems) == set(tenants.values())
    assert problems[tenants["first"]] is None
    assert problems[tenants["last"]] is None
    assert "Europe/Pariss" in problems[tenants["typo"]]
    assert {row["tenant"] for row in rows if row["problem"]} == {"Typo Ltd"}
    code, out, _ = _invoke("schedules", "--now", NOON.isoformat())
    assert code == 0
    assert "Typo Ltd" in out
    assert "Last Ltd" in out
    code, _, _ = _invoke("run", "compliance_refresh")
    assert code == 1  # the others ran
    code, out, _ = _invoke("runs", "--json")
    assert code == 0
    assert {row["tenant_id"] for row in json.loads(out)} == {tenants["first"], tenants["last"]}


def test_health_lists_every_tenant_and_names_the_bad_one(
    gcmc_db: Engine, gcmc_postgres_url: str, tenants: dict[str, int]
) -> None:
    settings = Settings(database_url=gcmc_postgres_url, broker_url="stub://")
    report = check_health(settings, engine=gcmc_db, checks=["daily_jobs"], now=NOON)
    check = report.checks["daily_jobs"]
    assert check.status == "unhealthy"
    assert _names_typo(check.detail, tenants)
    rows = check.data["jobs"]["compliance_refresh"]
    assert {row["tenant_id"] for row in rows} == set(tenants.values())
    [bad] = [row for row in rows if row["problem"]]
    assert (bad["tenant_id"], bad["tenant"]) == (tenants["typo"], "Typo Ltd")


@pytest.fixture
def api(
    gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str, gcmc_broker: dramatiq.Broker
) -> Iterator[TestClient]:
    settings = Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:tz{uuid.uuid4().hex[:6]}",
        email_url="memory://",
        admin_token=TOKEN,
    )
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def test_the_api_serves_the_others_and_names_the_bad_one(
    api: TestClient, tenants: dict[str, int]
) -> None:
    schedules = api.get("/api/schedules")
    assert schedules.status_code == 200
    rows = schedules.json()
    assert {row["tenant_id"] for row in rows} == set(tenants.values())
    assert {row["tenant"] for row in rows if row["problem"]} == {"Typo Ltd"}
    assert api.get("/api/runs").status_code == 200
    ok = api.post("/api/jobs/compliance_refresh/run", json={"tenant_id": tenants["last"]})
    assert ok.status_code == 200, ok.text
    bad = api.post("/api/jobs/compliance_refresh/run", json={"tenant_id": tenants["typo"]})
    assert bad.status_code == 422
    assert _names_typo(bad.json()["detail"], tenants)

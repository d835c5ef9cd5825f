"""``gcmc-jobs queues``, ``pause``, ``resume``, ``health`` through Typer's runner, on Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs import queue_names as queues
from gcmc_jobs.cli import app
from gcmc_jobs.middleware.stores import RedisPauseStore

runner = CliRunner()


@pytest.fixture
def namespace(
    monkeypatch: pytest.MonkeyPatch,
    gcmc_postgres_url: str,
    gcmc_redis_url: str,
    gcmc_namespace: str,
    gcmc_db: Engine,
) -> str:
    import uuid

    namespace = f"{gcmc_namespace}:cli{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", gcmc_redis_url)
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", namespace)
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    return namespace


def test_queues_prints_each_queue_with_its_counts(namespace: str, gcmc_redis_url: str) -> None:
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace)
    send = dramatiq.actor(lambda: None, actor_name="x", queue_name=queues.EMAIL, broker=broker)
    for _ in range(2):
        send.send()
    broker.close()

    result = runner.invoke(app, ["queues", "--json"])

    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows[queues.EMAIL]["ready"] == 2
    assert set(rows) >= set(queues.ALL)
    table = runner.invoke(app, ["queues"])
    assert queues.EMAIL in table.output
    assert "running" in table.output


def test_pause_and_resume_set_the_shared_flag(namespace: str, gcmc_redis_url: str) -> None:
    store = RedisPauseStore.from_url(gcmc_redis_url, namespace=namespace)

    result = runner.invoke(app, ["pause", queues.EMAIL])
    assert result.exit_code == 0, result.output
    assert store.paused() == {queues.EMAIL}
    assert "paused" in runner.invoke(app, ["queues"]).output

    result = runner.invoke(app, ["resume", queues.EMAIL])
    assert result.exit_code == 0, result.output
    assert store.paused() == frozenset()


def test_pausing_an_unknown_queue_fails_and_names_the_known_ones(namespace: str) -> None:
    result = runner.invoke(app, ["pause", "gcmc_emails"])
    assert result.exit_code == 1
    assert "gcmc_email_critical" in result.output


def test_health_prints_json_and_exits_1_when_unhealthy(namespace: str) -> None:
    result = runner.invoke(app, ["health", "--check", "broker", "--check", "database"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"broker", "database"}


def test_health_exits_1_when_the_broker_is_unreachable(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "redis://127.0.0.1:1/0")
    result = runner.invoke(app, ["health", "--check", "broker"])
    assert result.exit_code == 1
    assert json.loads(result.output)["checks"]["broker"]["status"] == "unhealthy"


def test_health_refuses_an_unknown_check(namespace: str) -> None:
    result = runner.invoke(app, ["health", "--check", "nope"])
    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["pause", "resume"])
@pytest.mark.parametrize("broker_url", ["amqp://guest:guest@127.0.0.1:5672/", "stub://"])
def test_pause_and_resume_without_redis_fail_naming_the_redis_setting(
    monkeypatch: pytest.MonkeyPatch, namespace: str, command: str, broker_url: str
) -> None:
    # Given a broker that is not Redis, and no GCMC_JOBS_REDIS_URL: no worker could read it
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", broker_url)

    result = runner.invoke(app, [command, queues.EMAIL])

    # Then the command refuses, in one line naming the setting
    assert result.exit_code == 3, result.output
    [line] = result.output.strip().splitlines()
    assert "GCMC_JOBS_REDIS_URL" in line
    assert "Traceback" not in result.output


def test_health_on_the_default_in_process_broker_is_healthy(tmp_path: Path) -> None:
    # Issue 11, item 14: with the default (stub) broker, the queues check raised
    # NotConfiguredError and `health` exited 1. A new user's first run: the console script,
    # no GCMC_JOBS_* but a migrated database of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env["GCMC_JOBS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    script = str(Path(sys.executable).with_name("gcmc-jobs"))

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *arguments], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert run("db", "upgrade").returncode == 0
    done = run("health")

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["checks"]["queues"]["status"] == "ok"
    assert "stub broker" in report["checks"]["queues"]["detail"]
    assert report["status"] == "warning"  # only the "no Redis" warning

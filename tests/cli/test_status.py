"""``gcmc-jobs status ID`` through Typer's runner, on Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from typer.testing import CliRunner

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.cli import app
from gcmc_jobs.settings import Settings

runner = CliRunner()


@pytest.fixture
def settings(
    monkeypatch: pytest.MonkeyPatch,
    gcmc_postgres_url: str,
    gcmc_redis_url: str,
    gcmc_namespace: str,
) -> Settings:
    """The command's environment: the Redis broker, a namespace of this test alone."""
    namespace = f"{gcmc_namespace}:clistatus{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", gcmc_redis_url)
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", namespace)
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=namespace,
        email_url="memory://",
    )


@pytest.fixture
def sent(settings: Settings) -> Iterator[dramatiq.Message[None]]:
    """A message a host sent (no worker runs it): its status is ``enqueued``."""
    with configured(settings) as runtime:

        @dramatiq.actor(broker=runtime.broker, queue_name="cli_status")
        def cli_noop() -> None:
            pass

        yield cli_noop.send()


def test_status_prints_a_sent_message_state(sent: dramatiq.Message[None]) -> None:
    result = runner.invoke(app, ["status", sent.message_id])

    assert result.exit_code == 0, result.output
    assert "enqueued" in result.output
    assert "cli_noop" in result.output


def test_status_json_is_one_document(sent: dramatiq.Message[None]) -> None:
    result = runner.invoke(app, ["status", sent.message_id, "--json"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["message_id"] == sent.message_id
    assert (document["state"], document["actor"], document["queue"]) == (
        "enqueued",
        "cli_noop",
        "cli_status",
    )
    assert document["attempts"] == 1


def test_status_of_an_unknown_message_says_so_and_exits_1(settings: Settings) -> None:
    result = runner.invoke(app, ["status", "00000000-0000-4000-8000-000000000000"])

    assert result.exit_code == 1
    assert "unknown" in result.output
    as_json = runner.invoke(app, ["status", "00000000-0000-4000-8000-000000000000", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["state"] == "unknown"


def test_status_of_something_that_is_no_message_id_is_one_line(settings: Settings) -> None:
    result = runner.invoke(app, ["status", "no such id!"])

    assert result.exit_code == 1
    assert "not a message id" in result.output
    assert "Traceback" not in result.output


def test_status_without_redis_says_which_setting_to_set(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")

    result = runner.invoke(app, ["status", "00000000-0000-4000-8000-000000000000"])

    assert result.exit_code != 0
    assert "GCMC_JOBS_REDIS_URL" in result.output

"""``gcmc-jobs messages list | show | cancel | promote`` through Typer's runner, on Redis (and
what it says on RabbitMQ)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from typer.testing import CliRunner

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.cli import app
from gcmc_jobs.settings import Settings

runner = CliRunner()
QUEUE = "cli_live"


@pytest.fixture
def settings(
    monkeypatch: pytest.MonkeyPatch,
    gcmc_postgres_url: str,
    gcmc_redis_url: str,
    gcmc_namespace: str,
) -> Settings:
    """The command's environment: the Redis broker, a namespace of this test alone."""
    namespace = f"{gcmc_namespace}:climsgs{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", gcmc_redis_url)
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", namespace)
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        namespace=namespace,
        email_url="memory://",
        outbox_relay=False,
    )


@pytest.fixture
def sent(settings: Settings) -> Iterator[dict[str, Any]]:
    """Two ready messages (one with a password) and one delayed, that no worker runs."""
    with configured(settings) as runtime:

        @dramatiq.actor(broker=runtime.broker, queue_name=QUEUE)
        def cli_work(n: int, password: str = "") -> None:
            pass

        yield {
            "ready": [cli_work.send(1, password="hunter2"), cli_work.send(2)],
            "delayed": cli_work.send_with_options(args=(3,), delay=3_600_000),
        }


def _json(*args: str) -> Any:
    result = runner.invoke(app, ["messages", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_prints_every_page_with_all(sent: dict[str, Any]) -> None:
    listed = _json("list", QUEUE, "--limit", "1", "--all")

    assert [m["message_id"] for m in listed] == [
        sent["ready"][0].message_id,
        sent["ready"][1].message_id,
        sent["delayed"].message_id,
    ]
    assert [m["state"] for m in listed] == ["ready", "ready", "delayed"]


def test_list_as_a_table_says_the_counts_and_how_to_go_on(sent: dict[str, Any]) -> None:
    result = runner.invoke(app, ["messages", "list", QUEUE, "--limit", "1"])

    assert result.exit_code == 0, result.output
    assert "2 ready, 1 delayed; 1 shown" in result.output
    assert "--cursor" in result.output
    assert sent["ready"][0].message_id in result.output


def test_list_refuses_an_unknown_state(sent: dict[str, Any]) -> None:
    result = runner.invoke(app, ["messages", "list", QUEUE, "--state", "running"])
    assert result.exit_code == 2
    assert "expected ready or delayed" in result.output


def test_show_masks_the_password(sent: dict[str, Any]) -> None:
    shown = _json("show", QUEUE, sent["ready"][0].message_id)

    assert (shown["args"], shown["kwargs"]) == ([1], {"password": "***"})
    assert shown["status"]["state"] == "enqueued"


def test_show_of_an_unknown_id_exits_1(sent: dict[str, Any]) -> None:
    result = runner.invoke(app, ["messages", "show", QUEUE, str(uuid.uuid4())])
    assert result.exit_code == 1
    assert "unknown" in result.output


def test_cancel_dry_run_then_for_real(sent: dict[str, Any]) -> None:
    ids = [sent["ready"][1].message_id, sent["delayed"].message_id]

    dry = _json("cancel", QUEUE, *ids, "--dry-run")
    done = _json("cancel", QUEUE, *ids)

    assert [r["status"] for r in dry] == ["would_cancel", "would_cancel"]
    assert [r["status"] for r in done] == ["cancelled", "cancelled"]
    assert [m["message_id"] for m in _json("list", QUEUE)] == [sent["ready"][0].message_id]


def test_cancel_exits_1_when_an_id_was_not_cancelled(sent: dict[str, Any]) -> None:
    result = runner.invoke(app, ["messages", "cancel", QUEUE, str(uuid.uuid4())])
    assert result.exit_code == 1
    assert "not_found" in result.output


def test_promote_makes_the_delayed_message_ready(sent: dict[str, Any]) -> None:
    results = _json("promote", QUEUE, "--all")

    assert [(r["message_id"], r["status"]) for r in results] == [
        (sent["delayed"].message_id, "promoted")
    ]
    assert [m["state"] for m in _json("list", QUEUE)] == ["ready"] * 3


def test_promote_needs_ids_or_all_not_both(sent: dict[str, Any]) -> None:
    result = runner.invoke(app, ["messages", "promote", QUEUE])
    assert result.exit_code == 1
    assert "give message ids, or --all" in result.output


def test_on_rabbitmq_it_says_what_amqp_cannot_do(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")

    result = runner.invoke(app, ["messages", "list", QUEUE])

    assert result.exit_code == 1
    assert "RabbitMQ cannot list" in result.output
    assert "'cli_live' holds 0 ready, 0 delayed" in result.output
    assert "Traceback" not in result.output

"""Output for scripts: every command with ``--json`` prints exactly one JSON document (a list
for a listing, ``[]`` when empty), and a table through a pipe keeps its cells whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import typer.main
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.models import Role
from gcmc_jobs.middleware import DeadLetterRecord, RedisStatusStore, SqlDeadLetterStore
from gcmc_jobs.services import reports
from tests import factories as f

#: The commands that list things: each must offer ``--json``.
LISTINGS = {
    "campaigns list",
    "dead-letters list",
    "email kinds",
    "messages list",
    "queues",
    "runs",
    "schedules",
    "settings",
    "suppressions history",
    "suppressions list",
}

#: What a ``--json`` command with a required argument runs with, on the filled database.
ARGUMENTS: dict[str, list[str]] = {
    "campaigns create": [
        *("--tenant", "1", "--name", "News", "--subject", "News", "--body", "Hello"),
        *("--segment", "clients"),
    ],
    "campaigns show": ["1"],
    "dead-letters show": ["1"],
    "messages cancel": ["gcmc_compliance", "msg-1"],
    "messages list": ["gcmc_compliance"],
    "messages promote": ["gcmc_compliance", "--all"],
    "messages show": ["gcmc_compliance", "msg-1"],
    "report": ["1", "--period", "2026-05"],
    "status": ["msg-1"],
    "bounces ingest": [os.devnull],  # an empty mbox
    "suppressions import": [os.devnull],  # an empty CSV
    "webhooks add": ["1", "https://hooks.example/x"],
    "webhooks attempts": ["1"],
}

# Wider than any terminal's 80 columns, and breakable nowhere but at its end.
LONG_ACTOR = "refresh_compliance_" + "x" * 100


def json_commands() -> list[str]:
    """Every command (as the words that invoke it) that has a ``--json`` option."""
    found: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in sorted(children.items()):
                walk(child, [*path, name])
        elif any("--json" in param.opts for param in command.params):
            found.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return found


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    gcmc_sqlite_db: Engine,
    gcmc_redis_url: str,
    gcmc_namespace: str,
) -> Engine:
    """The CLI on an empty migrated SQLite database and a Redis namespace of its own."""
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", str(gcmc_sqlite_db.url))
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", gcmc_redis_url)
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", f"{gcmc_namespace}:json{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("GCMC_JOBS_EMAIL_URL", "memory://")
    return gcmc_sqlite_db


def _fill(engine: Engine) -> None:
    """One tenant, one run in the ledger, one dead letter, one message status, one
    suppression, one report."""
    with session_scope(engine) as session:
        tenant = f.tenant(session, "Acme CPA")
        owner = f.member(session, tenant, Role.OWNER)
        f.client(session, tenant)
        reports.aggregate(session, tenant.id, date(2026, 5, 1), now=datetime.now(UTC))
    # an SMS opt-in and a suppressed number
    for words in (
        ["sms", "opt-in", str(tenant.id), str(owner.id), "+14155552671"],
        ["sms", "suppress", "+14155552672", "--reason", "stop"],
    ):
        assert CliRunner().invoke(app, words).exit_code == 0
    SqlDeadLetterStore(engine).add(
        DeadLetterRecord(
            message_id="msg-1",
            queue="gcmc_compliance",
            actor=LONG_ACTOR,
            args=[1],
            kwargs={},
            options={},
            error_type="builtins.RuntimeError",
            error="boom",
            traceback="(the traceback the worker stored)",
            attempts=6,
            failed_at=datetime.now(UTC),
        )
    )
    _fill_webhooks(engine)
    assert CliRunner().invoke(app, ["run", "compliance_refresh"]).exit_code == 0
    assert CliRunner().invoke(app, ["suppressions", "add", "gone@example.com"]).exit_code == 0
    assert (
        CliRunner().invoke(app, ["campaigns", "create", *ARGUMENTS["campaigns create"]]).exit_code
        == 0
    )
    # and the status of message msg-1, as StatusTracking records it
    client = redis.Redis.from_url(os.environ["GCMC_JOBS_BROKER_URL"])
    store = RedisStatusStore(client, namespace=os.environ["GCMC_JOBS_NAMESPACE"])
    store.record("msg-1", 10, {"state": "enqueued", "actor": LONG_ACTOR}, 60_000)
    client.close()
    # and, waiting in gcmc_compliance, message msg-1 and a delayed one
    broker = RedisBroker(
        url=os.environ["GCMC_JOBS_BROKER_URL"], namespace=os.environ["GCMC_JOBS_NAMESPACE"]
    )
    broker.enqueue(Message("gcmc_compliance", LONG_ACTOR, (1,), {}, {}, message_id="msg-1"))
    broker.enqueue(Message("gcmc_compliance", LONG_ACTOR, (2,), {}, {}), delay=3_600_000)
    broker.close()


def _fill_webhooks(engine: Engine) -> None:
    """An endpoint of tenant 1 and a delivery of one event, with one failed attempt."""
    from gcmc_jobs.services import webhook_deliveries, webhook_endpoints, webhook_events

    with session_scope(engine) as session:
        webhook_endpoints.add_endpoint(session, 1, "https://hooks.example/x", "*")
        webhook_events.emit(session, 1, "job_run.failed", {"job": "x"}, dedup_key="e1")
        webhook_deliveries.fan_out(session)
        delivery = webhook_deliveries.claim(session, 1)
        assert delivery is not None
        webhook_deliveries.record_attempt(
            session,
            delivery,
            status_code=500,
            latency_ms=1.0,
            response_body="no",
            error=None,
            policy=webhook_deliveries.RetryPolicy(),
        )


def _json_of(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # one document, nothing before or after it


def test_every_listing_command_has_json() -> None:
    assert set(json_commands()) >= LISTINGS


@pytest.mark.parametrize("command", [c for c in json_commands() if c not in ARGUMENTS], ids=str)
def test_json_is_one_document_when_there_is_nothing_to_list(command: str, env: Engine) -> None:
    document = _json_of(*command.split())

    if command in {"dead-letters list", "runs", "schedules", "suppressions list"}:
        assert document == []


@pytest.mark.parametrize("command", json_commands(), ids=str)
def test_json_is_one_document_when_there_are_rows(command: str, env: Engine) -> None:
    _fill(env)

    document = _json_of(*command.split(), *ARGUMENTS.get(command, []))

    assert document, f"{command} --json printed an empty document on a filled database"
    if command == "dead-letters list":  # one list, not one object per dead letter
        assert [row["actor"] for row in document] == [LONG_ACTOR]


def test_a_wide_table_through_a_pipe_keeps_its_full_cells(env: Engine) -> None:
    _fill(env)
    variables = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    script = Path(sys.executable).with_name("gcmc-jobs")

    # stdout is a pipe; stdin and stderr too, so no terminal size is found anywhere.
    done = subprocess.run(
        [str(script), "dead-letters", "list"],
        env=variables,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    [row] = [line for line in done.stdout.splitlines() if line.startswith("│ 1 ")]
    assert LONG_ACTOR in row  # whole, on one line: not folded, not cut with "…"
    assert len(row) > 80

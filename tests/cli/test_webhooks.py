"""``gcmc-jobs webhooks``: add (the secret shown once), list, test against a real local
receiver, deliveries, attempts, disable / enable, replay, remove."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from standardwebhooks import Webhook
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.testing.webhooks import WebhookReceiver
from tests import factories as f


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, gcmc_sqlite_db: Engine, gcmc_namespace: str) -> Engine:
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", str(gcmc_sqlite_db.url))
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", f"{gcmc_namespace}:wh{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("GCMC_JOBS_EMAIL_URL", "memory://")
    monkeypatch.setenv("GCMC_JOBS_WEBHOOK_ALLOW_PRIVATE", "true")
    with session_scope(gcmc_sqlite_db) as session:
        f.tenant(session)
    return gcmc_sqlite_db


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def _run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_add_test_and_inspect_an_endpoint(env: Engine, receiver: WebhookReceiver) -> None:
    # Given an endpoint added for tenant 1 (its secret shown once)
    added = json.loads(
        _run("webhooks", "add", "1", receiver.url(), "--events", "job_run.failed", "--json")
    )
    secret = added["secret"]
    assert secret.startswith("whsec_")
    listed = json.loads(_run("webhooks", "list", "--json"))
    assert [e["url"] for e in listed] == [receiver.url()]
    assert "secret" not in listed[0]
    assert secret not in _run("webhooks", "list")

    # When it is tested: a signed request the receiver verifies, exit 0
    out = _run("webhooks", "test", str(added["id"]))
    assert "status_code: 200" in out
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"

    # And a failing receiver: exit 1, the attempt recorded with its status and body
    receiver.script("error")
    assert "status_code: 500" in _run("webhooks", "test", str(added["id"]), code=1)
    deliveries = json.loads(_run("webhooks", "deliveries", "--json"))
    assert [d["status"] for d in deliveries] == ["pending", "succeeded"]  # the 500 retries
    attempts = json.loads(_run("webhooks", "attempts", str(deliveries[0]["id"]), "--json"))
    assert [(a["status_code"], a["response_body"]) for a in attempts] == [(500, "receiver error")]


def test_disable_enable_replay_remove(env: Engine, receiver: WebhookReceiver) -> None:
    added = json.loads(_run("webhooks", "add", "1", receiver.url(), "--json"))
    endpoint = str(added["id"])
    assert "disabled" in _run("webhooks", "disable", endpoint)
    # a test of a disabled endpoint sends nothing and fails
    _run("webhooks", "test", endpoint, code=1)
    assert receiver.requests == []
    [failed] = json.loads(_run("webhooks", "deliveries", "--status", "failed", "--json"))
    assert "enabled" in _run("webhooks", "enable", endpoint)
    assert "replaying 1" in _run("webhooks", "replay", "--all-failed", "--endpoint", endpoint)
    [pending] = json.loads(_run("webhooks", "deliveries", "--json"))
    assert (pending["id"], pending["status"]) == (failed["id"], "pending")
    _run("webhooks", "replay", str(failed["id"]), "--all-failed", code=1)  # not both
    assert "removed" in _run("webhooks", "remove", endpoint)
    assert json.loads(_run("webhooks", "list", "--json")) == []
    result = CliRunner().invoke(app, ["webhooks", "remove", endpoint])
    assert result.exit_code == 1
    assert "unknown webhook endpoint" in result.output


def test_a_bad_event_type_is_refused_naming_the_known_ones(env: Engine) -> None:
    result = CliRunner().invoke(
        app, ["webhooks", "add", "1", "https://x.example", "--events", "nope"]
    )
    assert result.exit_code == 1
    assert "unknown event type(s) nope" in result.output
    assert "compliance.level_changed" in result.output

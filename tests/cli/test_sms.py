"""``gcmc-jobs sms``: opt-ins, suppressions and a test SMS, through Typer's runner."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.enums import Role
from gcmc_jobs.testing import TwilioSink
from tests import factories as f

runner = CliRunner()


@pytest.fixture
def ids(monkeypatch: pytest.MonkeyPatch, gcmc_postgres_url: str, gcmc_db: Engine) -> list[str]:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    with session_scope(gcmc_db) as session:
        tenant = f.tenant(session, "Acme CPA")
        owner = f.member(session, tenant, Role.OWNER)
        stranger = f.user(session)
    return [str(tenant.id), str(owner.id), str(stranger.id)]


def _json(*words: str) -> object:
    result = runner.invoke(app, [*words, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_opt_in_list_and_opt_out(ids: list[str]) -> None:
    tenant, owner, _ = ids
    result = runner.invoke(app, ["sms", "opt-in", tenant, owner, "+1 415 555 2671"])
    assert result.exit_code == 0, result.output
    assert "+14155552671" in result.output

    rows = _json("sms", "list", "--tenant", tenant)
    assert [(r["category"], r["phone"]) for r in rows] == [  # type: ignore[index]
        ("documents", "+14155552671"),
        ("filings", "+14155552671"),
    ]
    result = runner.invoke(app, ["sms", "opt-out", tenant, owner, "--category", "filings"])
    assert result.exit_code == 0, result.output
    assert [r["category"] for r in _json("sms", "list")] == ["documents"]  # type: ignore[index, union-attr]


def test_a_bad_number_or_a_stranger_is_refused_with_a_clear_error(ids: list[str]) -> None:
    tenant, owner, stranger = ids
    bad = runner.invoke(app, ["sms", "opt-in", tenant, owner, "555-0100"])
    assert bad.exit_code == 2
    assert "not an E.164 number" in bad.output
    refused = runner.invoke(app, ["sms", "opt-in", tenant, stranger, "+14155552671"])
    assert refused.exit_code == 1
    assert f"user {stranger} is not a member of tenant {tenant}" in refused.output
    assert _json("sms", "list") == []


def test_suppress_list_and_unsuppress(ids: list[str]) -> None:
    assert (
        runner.invoke(app, ["sms", "suppress", "+14155552671", "--reason", "stop"]).exit_code == 0
    )
    [row] = _json("sms", "suppressions")  # type: ignore[misc]
    assert (row["phone"], row["reason"]) == ("+14155552671", "stop")
    result = runner.invoke(app, ["sms", "unsuppress", "+1 415 555 2671"])
    assert "no longer suppressed" in result.output
    assert _json("sms", "suppressions") == []
    wrong = runner.invoke(app, ["sms", "suppress", "+14155552671", "--reason", "bored"])
    assert wrong.exit_code == 2


def test_a_test_sms_goes_through_the_configured_provider(
    monkeypatch: pytest.MonkeyPatch, twilio_server: TwilioSink
) -> None:
    for name, value in twilio_server.settings().items():
        monkeypatch.setenv(f"GCMC_JOBS_{name.upper()}", value)

    result = runner.invoke(app, ["sms", "test", "+14155552671", "--body", "ping"])

    assert result.exit_code == 0, result.output
    assert "sent to +14155552671: SM" in result.output
    assert twilio_server.messages[0]["Body"] == "ping"

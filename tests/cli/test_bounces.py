"""``gcmc-jobs suppressions list | add | remove | import | history`` and ``gcmc-jobs bounces
ingest``, through Typer's runner: changes recorded as ``cli:<user>``, clear per-row errors."""

from __future__ import annotations

import getpass
import json
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from tests.email.test_dsn import dsn

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, gcmc_postgres_url: str, gcmc_db: Engine) -> Engine:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    return gcmc_db


def _json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_list_remove_and_history_name_the_user(env: Engine) -> None:
    added = runner.invoke(app, ["suppressions", "add", "A@Example.com", "b@example.com"])
    assert added.exit_code == 0, added.output
    assert "suppressed 2 address(es) (manual)" in added.output
    listed = _json("suppressions", "list", "--search", "a@")
    assert [(s["address"], s["source"]) for s in listed] == [  # type: ignore[union-attr]
        ("a@example.com", f"cli:{getpass.getuser()}")
    ]

    removed = runner.invoke(app, ["suppressions", "remove", "a@example.com", "nobody@x.org"])
    assert removed.exit_code == 0, removed.output
    assert "removed 1 suppression(s)" in removed.stdout
    assert "not suppressed (nothing to do): nobody@x.org" in removed.stderr
    history = _json("suppressions", "history", "--address", "a@example.com")
    assert [(c["action"], c["actor"]) for c in history] == [  # type: ignore[union-attr]
        ("removed", f"cli:{getpass.getuser()}"),
        ("added", f"cli:{getpass.getuser()}"),
    ]


def test_a_bad_address_or_reason_is_a_usage_error(env: Engine) -> None:
    bad = runner.invoke(app, ["suppressions", "add", "not-an-address"])
    reason = runner.invoke(app, ["suppressions", "add", "a@example.com", "--reason", "spam"])
    assert bad.exit_code == reason.exit_code == 2
    assert "unknown reason 'spam'" in reason.stderr


def test_import_reports_each_bad_row_and_imports_nothing_unless_told(
    env: Engine, tmp_path: Path
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("address,reason\nok@example.com\nbroken\nc@example.com,complaint\n")

    refused = runner.invoke(app, ["suppressions", "import", str(csv)])
    assert refused.exit_code == 1
    assert f"{csv}: line 3: 'broken': must be a bare email address" in refused.stderr
    assert "nothing imported" in refused.stderr
    assert _json("suppressions", "list") == []

    done = runner.invoke(app, ["suppressions", "import", str(csv), "--skip-invalid"])
    assert done.exit_code == 0, done.output
    assert "suppressed 2 address(es)" in done.stdout
    assert {s["reason"] for s in _json("suppressions", "list")} == {  # type: ignore[union-attr]
        "manual",
        "complaint",
    }


def test_bounces_ingest_reads_an_mbox_and_suppresses_hard_bounces(
    env: Engine, tmp_path: Path
) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(dsn("gone@example.com", dsn_id="<d1@mx>"))
    box.add(dsn("full@example.com", status="5.2.2", diagnostic="smtp; 552 full", dsn_id="<d2@mx>"))
    box.close()

    first = _json("bounces", "ingest", str(tmp_path / "bounces.mbox"))
    again = runner.invoke(app, ["bounces", "ingest", str(tmp_path / "bounces.mbox")])

    assert first == {
        "messages": 2,
        "not_dsn": 0,
        "events": 2,
        "recorded": 2,
        "duplicates": 0,
        "suppressed": {"gone@example.com": "hard_bounce"},
    }
    assert again.exit_code == 0, again.output
    assert "0 recorded, 2 already recorded" in again.stdout
    missing = runner.invoke(app, ["bounces", "ingest", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2

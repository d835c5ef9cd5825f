"""``gcmc-jobs dead-letters``: list, show (masked), replay, purge, through Typer's runner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.middleware import DeadLetterRecord, SqlDeadLetterStore

runner = CliRunner()


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, gcmc_postgres_url: str, gcmc_db: Engine
) -> SqlDeadLetterStore:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    monkeypatch.setenv("GCMC_JOBS_BROKER_URL", "stub://")
    monkeypatch.delenv("GCMC_JOBS_REDIS_URL", raising=False)
    store = SqlDeadLetterStore(gcmc_db)
    for n, days in enumerate((0, 40)):
        store.add(
            DeadLetterRecord(
                message_id=f"msg-{n}",
                queue="gcmc_compliance",
                actor="refresh_compliance",
                args=[],
                kwargs={"tenant_id": n + 1, "reset_link": "https://p.example/reset/SECRET1"},
                options={
                    "retries": 5,
                    "traceback": "Traceback…",
                    "db": "postgresql://u:SECRET2@h/db",
                },
                error_type="builtins.RuntimeError",
                error="boom",
                traceback="Traceback (most recent call last): …",
                attempts=6,
                failed_at=datetime.now(UTC) - timedelta(days=days),
            )
        )
    return store


def test_list_shows_a_table_filtered_by_since(env: SqlDeadLetterStore) -> None:
    result = runner.invoke(app, ["dead-letters", "list", "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert "1 dead letter(s)" in result.output
    as_json = runner.invoke(
        app, ["dead-letters", "list", "--json", "--actor", "refresh_compliance"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert as_json.output.count('"actor": "refresh_compliance"') == 2


def test_show_masks_secrets(env: SqlDeadLetterStore) -> None:
    (record, _) = sorted(env.find(), key=lambda r: r.message_id)
    result = runner.invoke(app, ["dead-letters", "show", str(record.id)])
    assert result.exit_code == 0, result.output
    assert "SECRET1" not in result.output
    assert "SECRET2" not in result.output
    assert "msg-0" in result.output
    missing = runner.invoke(app, ["dead-letters", "show", "999999"])
    assert missing.exit_code == 1
    assert "no dead letter" in missing.output


def test_replay_dry_run_then_for_real_then_purge(env: SqlDeadLetterStore) -> None:
    dry = runner.invoke(app, ["dead-letters", "replay", "--all-matching", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would_replay") == 2
    assert all(r.replayed_at is None for r in env.find())

    (record, _) = sorted(env.find(), key=lambda r: r.message_id)
    real = runner.invoke(app, ["dead-letters", "replay", str(record.id)])
    assert real.exit_code == 0, real.output
    assert "replayed" in real.output
    (replayed,) = env.get([record.id or 0])
    assert replayed.replayed_as is not None

    both = runner.invoke(app, ["dead-letters", "replay", "1", "--all-matching"])
    assert both.exit_code == 1

    purged = runner.invoke(app, ["dead-letters", "purge", "--older-than", "30d"])
    assert purged.exit_code == 0, purged.output
    assert "purged 1" in purged.output
    assert [r.message_id for r in env.find()] == ["msg-0"]

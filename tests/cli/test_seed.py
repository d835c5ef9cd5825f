"""``gcmc-jobs seed`` through Typer's runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.models import Client, Tenant


def test_seed_command_migrates_and_fills_a_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'seeded.sqlite3'}"
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", url)

    result = CliRunner().invoke(
        app, ["seed", "--tenants", "2", "--clients-per-tenant", "4", "--seed", "5"]
    )

    assert result.exit_code == 0, result.output
    assert "document_versions" in result.output
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 2
        assert session.scalar(select(func.count()).select_from(Client)) == 8
    engine.dispose()


def test_seed_command_refuses_negative_sizes() -> None:
    result = CliRunner().invoke(app, ["seed", "--tenants", "-1"])
    assert result.exit_code == 2  # a usage error, before touching any database

"""``gcmc-jobs import`` and ``gcmc-jobs export`` through Typer's runner."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from tests import factories as f

CLIENTS = (
    "external_id,name,email,assigned_user_email,is_active\n"
    "c-1,Alpha Ltd,alpha@example.com,,true\n"
    "c-2,Beta LLC,,,false\n"
)


@pytest.fixture
def tenant_id(gcmc_db: Engine, gcmc_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", gcmc_postgres_url)
    with Session(gcmc_db) as session:
        tenant = f.tenant(session)
        session.commit()
    return str(tenant.id)


def test_import_then_reimport_then_export(tenant_id: str, tmp_path: Path) -> None:
    source = tmp_path / "clients.csv"
    source.write_text(CLIENTS)

    first = CliRunner().invoke(app, ["import", tenant_id, str(source), "--what", "clients"])
    again = CliRunner().invoke(app, ["import", tenant_id, str(source), "--what", "clients"])
    out = tmp_path / "out" / "clients.csv"
    out.parent.mkdir()
    exported = CliRunner().invoke(
        app, ["export", tenant_id, "--what", "clients", "--output", str(out)]
    )
    to_stdout = CliRunner().invoke(app, ["export", tenant_id, "--what", "clients"])

    assert first.exit_code == 0, first.output
    assert "2 inserted, 0 updated, 0 unchanged" in first.output
    assert again.exit_code == 0, again.output
    assert "0 inserted, 0 updated, 2 unchanged" in again.output
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["external_id"], r["is_active"]) for r in rows] == [("c-1", "true"), ("c-2", "false")]
    assert (
        to_stdout.stdout.splitlines()[0]
        == "id,external_id,name,email,assigned_user_email,is_active"
    )
    assert not list(out.parent.glob("*.partial"))


def test_an_invalid_file_exits_1_and_writes_the_error_report_next_to_it(
    tenant_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "clients.csv"
    source.write_text(CLIENTS.replace("c-2,Beta LLC", "c-1,Beta LLC"))

    result = CliRunner().invoke(app, ["import", tenant_id, str(source), "--what", "clients"])

    assert result.exit_code == 1
    assert "nothing imported" in result.stderr
    report = tmp_path / "clients.errors.csv"
    assert report.read_text().splitlines() == [
        "row,column,error",
        "3,external_id,'c-1' already appears in row 2",
    ]
    listed = CliRunner().invoke(app, ["export", tenant_id, "--what", "clients"])
    assert len(listed.stdout.splitlines()) == 1  # the header alone: nothing was written


def test_unknown_what_is_a_usage_error(tenant_id: str, tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text(CLIENTS)
    result = CliRunner().invoke(app, ["import", tenant_id, str(source), "--what", "invoices"])
    assert result.exit_code == 2
    assert "invoices" in result.output

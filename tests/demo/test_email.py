"""The demo's email step: a welcome and a password reset end up as ``.eml`` files."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gcmc_jobs.db.models import EmailStatus
from gcmc_jobs.demo import run_demo
from gcmc_jobs.settings import Settings


def test_the_email_step_writes_a_welcome_and_a_reset_as_eml_files(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        broker_url="stub://",
        email_url=f"file://{tmp_path / 'outbox'}",
    )
    console = Console(record=True, width=200)
    ctx = run_demo(
        settings, tenants=1, clients_per_tenant=5, console=console, steps=["gcmc_jobs.demo.email"]
    )
    rows = ctx.facts["email"]
    assert [row.kind for row in rows] == ["welcome", "password_reset"]
    assert all(row.status == EmailStatus.SENT for row in rows)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert {Path(row.provider_message_id) for row in rows} == set(files)
    output = console.export_text()
    assert all(str(path) in output for path in files)
    assert "token=" not in output

"""``gcmc-jobs settings`` and the README's settings reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_lists_every_setting_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GCMC_JOBS_EMAIL_URL", "smtp://mailer:hunter2@mail.example:587")
    monkeypatch.setenv("GCMC_JOBS_ADMIN_TOKEN", "s3cret-admin-token")
    monkeypatch.setenv("GCMC_JOBS_JOB_TIMES", '{"compliance_refresh": "03:15"}')

    result = CliRunner().invoke(app, ["settings", "--json"])

    assert result.exit_code == 0, result.output
    rows = {row["env"]: row for row in json.loads(result.output)}
    assert set(rows) == {f"GCMC_JOBS_{name.upper()}" for name in Settings.model_fields}
    assert rows["GCMC_JOBS_EMAIL_URL"]["value"] == "smtp://***@mail.example:587"
    assert rows["GCMC_JOBS_ADMIN_TOKEN"]["value"] == "***"
    assert rows["GCMC_JOBS_JOB_TIMES"]["value"]["compliance_refresh"] == "03:15"
    assert "hunter2" not in result.output
    assert "s3cret-admin-token" not in result.output


def test_an_invalid_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCMC_JOBS_RATE_LIMIT", "zero")

    result = CliRunner().invoke(app, ["settings"])

    assert result.exit_code == 3  # an invalid setting (README, "Command line")
    assert result.stderr.startswith("error: GCMC_JOBS_RATE_LIMIT: Input should be a valid int")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(name: str) -> None:
    assert f"GCMC_JOBS_{name.upper()}" in README.read_text()

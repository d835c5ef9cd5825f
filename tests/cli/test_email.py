"""``gcmc-jobs email preview`` and ``gcmc-jobs email kinds``, through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcmc_jobs.cli import app

runner = CliRunner()


def test_preview_renders_the_sample_to_the_terminal_and_an_html_file(tmp_path: Path) -> None:
    out = tmp_path / "welcome.html"
    result = runner.invoke(app, ["email", "preview", "welcome", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Subject: Welcome to Acme CPA, Jane Doe" in result.output
    assert "Open your portal" in result.output
    assert out.read_text().lstrip().startswith("<!DOCTYPE html>")


def test_preview_renders_given_json_escaped(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(
        json.dumps(
            {
                "tenant_name": "Beta LLP",
                "subject": "Notice",
                "body": "<b>{{ 7 * 7 }}</b>",
            }
        )
    )
    out = tmp_path / "custom.html"
    result = runner.invoke(
        app, ["email", "preview", "custom", "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Subject: Notice" in result.output
    assert "&lt;b&gt;{{ 7 * 7 }}&lt;/b&gt;" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["newsletter"], "unknown email kind"),
        (["custom", "--data", "{data}"], "body"),
    ],
)
def test_preview_explains_a_bad_kind_or_payload(
    args: list[str], message: str, tmp_path: Path
) -> None:
    data = tmp_path / "bad.json"
    data.write_text(json.dumps({"tenant_name": "Beta", "subject": "Hi"}))
    args = [arg.replace("{data}", str(data)) for arg in args]
    result = runner.invoke(app, ["email", "preview", *args, "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 1
    assert message in result.output


def test_kinds_lists_every_kind() -> None:
    result = runner.invoke(app, ["email", "kinds"])
    assert result.exit_code == 0
    assert "password_reset (critical)" in result.output
    assert "welcome (bulk)" in result.output

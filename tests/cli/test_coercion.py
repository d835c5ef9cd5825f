"""Option values are converted and checked by Typer's own coercion, built only when a value
needs it (``gcmc_jobs.cli._coercion``): the same values, the same errors. What a command
that takes no value loads is checked by ``tests/test_imports.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcmc_jobs.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("limit", "error"),
    [
        ("many", "Input should be a valid integer, unable to parse string as an integer"),
        ("0", "Input should be greater than or equal to 1"),
        ("1001", "Input should be less than or equal to 1000"),
    ],
)
def test_a_bad_option_value_is_refused_with_typers_message(limit: str, error: str) -> None:
    # `messages list` takes --limit between 1 and 1000; the value is refused while the
    # command line is parsed, before any setting or broker is read.
    result = runner.invoke(
        app, ["messages", "list", "gcmc_email", "--limit", limit], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 2
    assert f"Invalid value for '--limit': {error}" in result.output


def test_an_option_and_an_argument_are_converted_to_their_types(tmp_path: Path) -> None:
    # `email preview KIND --out FILE` needs no service: the path option becomes a Path.
    kinds = runner.invoke(app, ["email", "kinds", "--json"])
    assert kinds.exit_code == 0, kinds.output
    target = tmp_path / "preview.html"

    kind = json.loads(kinds.output)[0]["kind"]

    result = runner.invoke(app, ["email", "preview", kind, "--out", str(target)])

    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_a_missing_file_is_refused_as_typer_refuses_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"

    result = runner.invoke(
        app,
        ["email", "preview", "anything", "--data", str(missing)],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 2
    assert f"Invalid value for '--data': file '{missing}' does not exist." in result.output

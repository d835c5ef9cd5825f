"""The README's quickstart for a host application: first, short, and only real names."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from gcmc_jobs.cli import app
from gcmc_jobs.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _quickstart() -> str:
    text = README.read_text()
    start = text.index("## Quickstart for a host application")
    return text[start : text.index("\n## ", start + 1)]


def test_the_quickstart_comes_first_and_fits_in_80_lines() -> None:
    text = README.read_text()
    first_section = re.search(r"^## .*$", text, flags=re.MULTILINE)
    assert first_section is not None
    assert first_section.group(0) == "## Quickstart for a host application"
    assert len(_quickstart().strip().splitlines()) <= 80


def test_every_setting_and_command_the_quickstart_names_exists() -> None:
    quickstart = _quickstart()
    settings = {f"GCMC_JOBS_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"GCMC_JOBS_[A-Z_]+", quickstart))
    assert named - settings == set()
    commands = get_command(app).commands  # type: ignore[attr-defined]
    for line in re.findall(r"^gcmc-jobs ([a-z-]+(?: [a-z-]+)?)", quickstart, flags=re.MULTILINE):
        group, _, sub = line.partition(" ")
        assert group in commands, line
        if sub and hasattr(commands[group], "commands"):
            assert sub in commands[group].commands, line

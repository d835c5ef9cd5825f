"""The layers of gcmc_jobs import downward only (``[tool.importlinter]`` in pyproject.toml,
run by ``scripts/check`` too): the contracts hold, and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_package_keeps_its_import_contracts() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    # Given a copy of the package where the database layer imports the actors
    shutil.copytree(
        ROOT / "gcmc_jobs", tmp_path / "gcmc_jobs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    dialect = tmp_path / "gcmc_jobs" / "db" / "dialect.py"
    dialect.write_text(dialect.read_text() + "\nimport gcmc_jobs.actors  # upward\n")

    # When the contracts are checked on it
    result = _lint_imports(tmp_path)

    # Then the layer contract is broken, naming the import
    assert result.returncode != 0, result.stdout
    assert "gcmc_jobs imports downward only BROKEN" in result.stdout
    assert "gcmc_jobs.db.dialect -> gcmc_jobs.actors" in result.stdout

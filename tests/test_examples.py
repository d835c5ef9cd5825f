"""The examples work as documented (they live outside ``testpaths``; these run them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    for name in ("GCMC_JOBS_TEST_POSTGRES_URL", "GCMC_JOBS_TEST_REDIS_URL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def test_the_host_application_example_configures_and_sends(tmp_path: Path) -> None:
    # `python -m host_app` from examples/; here the package is put on the path instead, and
    # the SQLite file of the default settings lands in tmp_path.
    completed = subprocess.run(
        [sys.executable, "-m", "host_app"],
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": str(ROOT / "examples")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "sent refresh_compliance" in completed.stdout
    # the host's actor, imported after configure(), is bound to the configured broker
    assert "sent sync_client_to_crm" in completed.stdout


@pytest.mark.slow
def test_the_host_test_example_passes_with_the_packaged_fixtures() -> None:
    # A separate pytest run, as a host application's suite would be (the plugin comes from
    # the installed package's entry point, not from our conftest).
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "examples/test_host_app.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            "examples",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "5 passed" in completed.stdout

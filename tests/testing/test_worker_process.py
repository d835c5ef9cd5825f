"""gcmc_jobs.testing.WorkerProcess: a command in its own process group, waited on boundedly
(its real use, ``dramatiq`` and ``periodiq``, is in tests/test_worker.py and tests/faults)."""

from __future__ import annotations

import sys
from datetime import time
from pathlib import Path

import pytest

from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import WorkerProcess, settings_env, wait_until


def test_settings_env_is_what_settings_are_read_back_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://app:pw@db/app",
        broker_url="redis://:secret@redis:6379/1",
        namespace="host_tests",
        rate_limit=7,
        job_times={"compliance_refresh": time(3, 30)},
        admin_token="tok",
    )
    env = settings_env(settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert Settings() == settings
    assert env["GCMC_JOBS_BROKER_URL"] == "redis://:secret@redis:6379/1"
    assert "GCMC_JOBS_REDIS_URL" not in env  # unset stays unset


def test_a_dramatiq_worker_on_the_stub_broker_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stub://"):
        WorkerProcess.dramatiq(settings=Settings(), log_path=tmp_path / "worker.log")


def test_waiting_for_readiness_fails_at_once_with_the_output_when_it_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCMC_JOBS_NAMESPACE", "leaked")
    script = "import os; print('namespace:', os.environ.get('GCMC_JOBS_NAMESPACE'))"
    command = WorkerProcess(
        [sys.executable, "-c", script],
        log_path=tmp_path / "out.log",
        env={"GCMC_JOBS_BROKER_URL": "redis://x"},
        ready_line="ready for action",
    )
    with command, pytest.raises(AssertionError) as failed:
        command.wait_ready(timeout_s=60)

    assert "exited before logging 'ready for action'" in str(failed.value)
    assert "namespace: None" in str(failed.value)  # the test's GCMC_JOBS_* do not leak in
    assert command.returncode == 0


def test_leaving_the_block_kills_what_ignores_sigterm_and_its_children(tmp_path: Path) -> None:
    script = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    command = WorkerProcess(
        [sys.executable, "-c", script], log_path=tmp_path / "out.log", ready_line="child"
    )
    with command:
        command.wait_ready()
        child = int(command.output().split()[1])
        with pytest.raises(AssertionError, match="ignored SIGTERM"):
            command.stop(timeout_s=0.5)

    assert command.returncode is not None
    # the child got the group's SIGKILL too (gone, or a zombie waiting for its reaper)
    wait_until(lambda: _dead(child), timeout_s=10, what=f"process {child} to die")


def _dead(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status

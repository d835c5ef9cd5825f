"""Run gcmc-jobs' command-line programs as real subprocesses, and wait on them, boundedly.

For any test that needs a real ``dramatiq gcmc_jobs.worker`` or ``periodiq gcmc_jobs.worker``::

    env = gcmc_env(GCMC_JOBS_BROKER_URL=redis_url, GCMC_JOBS_NAMESPACE=namespace)
    with running(dramatiq_worker(env, tmp_path / "worker.log")) as worker:
        worker.wait_ready()
        ...                                   # send messages, wait for their effects
    assert worker.returncode == 0             # stopped by SIGTERM on leaving the block

Each program runs in its own session (so a signal reaches only what the test started), its
output goes to a file, and every wait fails with the program's output after a deadline
instead of hanging the suite. No test asserts on elapsed time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

__all__ = [
    "REPO_ROOT",
    "CommandProcess",
    "dramatiq_worker",
    "gcmc_env",
    "periodiq_scheduler",
    "running",
    "wait_until",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the venv's console scripts (``dramatiq``, ``periodiq``, ``gcmc-jobs``) live.
BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | bool | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    diagnose: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``condition`` until it returns something truthy (returned); after ``timeout_s``
    seconds fail with ``what`` and ``diagnose()``. The timeout bounds a hang; it is not a
    measurement."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}\n{diagnose()}"
            )
        time.sleep(interval_s)


def gcmc_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``GCMC_JOBS_*`` variable, plus ``settings``
    (``GCMC_JOBS_BROKER_URL=...``), with the repository importable and output unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class CommandProcess:
    """One program run in its own session, its stdout and stderr written to ``log_path``."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        ready_line: str,
        ready_count: int = 1,
        cwd: Path | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.ready_line = ready_line
        self.ready_count = ready_count
        self.cwd = cwd or log_path.parent
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CommandProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        tail = "\n".join(self.output().splitlines()[-40:])
        return f"$ {' '.join(self.argv)}  (exit status {self.returncode})\n{tail}"

    def wait_for_output(self, text: str, *, count: int = 1, timeout_s: float = 60) -> None:
        """Wait until ``text`` appears ``count`` times in the output; fail if it exits first."""

        def seen() -> bool:
            if self.output().count(text) >= count:
                return True
            if not self.alive():
                raise AssertionError(f"exited before printing {text!r}:\n{self.describe()}")
            return False

        wait_until(seen, timeout_s=timeout_s, what=repr(text), diagnose=self.describe)

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Wait for the program's readiness line (one per worker process)."""
        self.wait_for_output(self.ready_line, count=self.ready_count, timeout_s=timeout_s)

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM the program (once, as a process manager does) and wait for its exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(f"ignored SIGTERM for {timeout_s} s:\n{self.describe()}") from exc

    def kill(self) -> None:
        """SIGKILL the program's whole session (its forked workers too)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)


def dramatiq_worker(
    env: dict[str, str],
    log_path: Path,
    *,
    processes: int = 1,
    threads: int = 1,
    queues: tuple[str, ...] = (),
) -> CommandProcess:
    """``dramatiq gcmc_jobs.worker --processes N --threads T [--queues ...]``."""
    argv = [
        str(BIN / "dramatiq"),
        "gcmc_jobs.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    if queues:
        argv += ["--queues", *queues]
    return CommandProcess(
        argv,
        env=env,
        log_path=log_path,
        ready_line="Worker process is ready for action.",
        ready_count=processes,
    )


def periodiq_scheduler(env: dict[str, str], log_path: Path) -> CommandProcess:
    """``periodiq gcmc_jobs.worker``: ready once it has listed the periodic actors."""
    return CommandProcess(
        [str(BIN / "periodiq"), "gcmc_jobs.worker"],
        env=env,
        log_path=log_path,
        ready_line="Registered periodic actors",
    )


@contextlib.contextmanager
def running(process: CommandProcess) -> Iterator[CommandProcess]:
    """Start ``process``; on leaving, SIGTERM it if still running, and kill what remains."""
    process.start()
    try:
        yield process
    finally:
        if process.alive():
            with contextlib.suppress(AssertionError):
                process.stop(timeout_s=30)
        process.kill()

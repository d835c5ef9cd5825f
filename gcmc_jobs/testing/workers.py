"""Real worker processes for tests: :class:`WorkerProcess`.

``dramatiq gcmc_jobs.worker`` (or ``periodiq``, or any command) run as a subprocess in a
session of its own, so that a signal reaches only what the test started, with its output
written to a file. A test starts it, waits until it is ready, sends messages from its own
process and waits for their effects::

    worker = WorkerProcess.dramatiq(settings=settings, log_path=tmp_path / "worker.log")
    with worker:                                  # close(): SIGTERM, then SIGKILL
        worker.wait_ready()
        refresh_compliance.send(tenant_id)
        wait_until(scored, what="the score", diagnose=worker.describe)
        assert worker.stop() == 0, worker.describe()

It can also be crashed (:meth:`~WorkerProcess.kill`: SIGKILL of the whole process group) or
frozen and thawed (SIGSTOP/SIGCONT), the way the fault suite breaks workers. Every wait is
bounded and fails with the command's log tail. The ``gcmc_worker_process`` fixture of the
pytest plugin starts these for a test and stops them after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from gcmc_jobs.settings import Settings
from gcmc_jobs.testing.waiting import wait_until

__all__ = ["WorkerProcess", "settings_env"]

#: What each ``dramatiq`` worker process logs once its threads have started.
DRAMATIQ_READY = "Worker process is ready for action."
#: What ``periodiq`` logs once it has loaded the periodic actors.
PERIODIQ_READY = "Registered periodic actors"
#: periodiq has no ``python -m`` entry point: its console script, spelled out.
_PERIODIQ = "import sys, periodiq; sys.argv[0] = 'periodiq'; sys.exit(periodiq.entrypoint())"


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``GCMC_JOBS_*`` variables with which ``Settings()`` in another process equals
    ``settings`` (secrets included: this is the environment of a process, not a log)."""
    dumped = settings.model_dump(mode="json")
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(dumped[name], dict | list):
            text = json.dumps(dumped[name])
        else:
            text = str(dumped[name])
        env[f"GCMC_JOBS_{name.upper()}"] = text
    return env


class WorkerProcess:
    """One command run as a subprocess in its own session, its output written to a file.

    ``env`` is added to this process's environment, from which every ``GCMC_JOBS_*``
    variable is removed first (so the test's own settings never leak in); ``pythonpath``
    entries are put first on ``PYTHONPATH`` (to load a test's own actor modules); output is
    unbuffered. ``ready_line`` is what the command logs when it is ready, ``ready_count``
    times (once per worker process).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready_line: str | None = None,
        ready_count: int = 1,
        cwd: Path | None = None,
        pythonpath: Sequence[str | Path] = (),
    ) -> None:
        self.argv = [str(arg) for arg in argv]
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.ready_line = ready_line
        self.ready_count = ready_count
        self.cwd = cwd or self.log_path.parent
        self.pythonpath = [str(path) for path in pythonpath]
        self.process: subprocess.Popen[bytes] | None = None
        self._sigterm_sent = False

    @classmethod
    def dramatiq(
        cls,
        *,
        log_path: Path,
        settings: Settings | None = None,
        env: Mapping[str, str] | None = None,
        modules: Sequence[str] = ("gcmc_jobs.worker",),
        processes: int = 1,
        threads: int = 1,
        queues: Sequence[str] = (),
        shutdown_timeout_ms: int | None = None,
        cwd: Path | None = None,
        pythonpath: Sequence[str | Path] = (),
    ) -> WorkerProcess:
        """``python -m dramatiq MODULES --processes N --threads T [--queues ...]``.

        Its settings are ``settings`` (as ``GCMC_JOBS_*`` variables), then ``env``. The
        broker must be one another process can reach: ``stub://`` is refused.
        """
        environment = {**(settings_env(settings) if settings else {}), **(env or {})}
        if environment.get("GCMC_JOBS_BROKER_URL", "stub://").startswith("stub:"):
            raise ValueError(
                "a worker process needs a broker it shares with the test (redis:// or "
                "amqp://): GCMC_JOBS_BROKER_URL is stub://, the in-process broker"
            )
        if processes < 1 or threads < 1:
            raise ValueError(f"processes and threads must be >= 1, not {processes}, {threads}")
        argv = [sys.executable, "-m", "dramatiq", *modules]
        argv += ["--processes", str(processes), "--threads", str(threads)]
        if shutdown_timeout_ms is not None:
            argv += ["--worker-shutdown-timeout", str(shutdown_timeout_ms)]
        if queues:
            argv += ["--queues", *queues]
        return cls(
            argv,
            log_path=log_path,
            env=environment,
            ready_line=DRAMATIQ_READY,
            ready_count=processes,
            cwd=cwd,
            pythonpath=pythonpath,
        )

    @classmethod
    def periodiq(
        cls,
        *,
        log_path: Path,
        settings: Settings | None = None,
        env: Mapping[str, str] | None = None,
        module: str = "gcmc_jobs.worker",
        cwd: Path | None = None,
        pythonpath: Sequence[str | Path] = (),
    ) -> WorkerProcess:
        """``periodiq MODULE``: ready once it begins to list the periodic actors (the
        heading, logged just before each actor's line: :meth:`wait_for_output` an actor's
        name to know it is registered)."""
        environment = {**(settings_env(settings) if settings else {}), **(env or {})}
        return cls(
            [sys.executable, "-c", _PERIODIQ, module],
            log_path=log_path,
            env=environment,
            ready_line=PERIODIQ_READY,
            cwd=cwd,
            pythonpath=pythonpath,
        )

    # -- Lifecycle ---------------------------------------------------------------------------

    def start(self) -> WorkerProcess:
        """Start the command (output appended to ``log_path``)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
        environment.update(self.env)
        paths = [*self.pythonpath, environment.get("PYTHONPATH", "")]
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        environment["PYTHONUNBUFFERED"] = "1"
        self._sigterm_sent = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the test's own command line
                self.argv,
                env=environment,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __enter__(self) -> WorkerProcess:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout_s: float = 30) -> None:
        """Make sure it is gone, however the test ended: SIGTERM if it still runs (waiting up
        to ``timeout_s``), then SIGKILL whatever of its process group remains."""
        if self.alive():
            with contextlib.suppress(AssertionError):
                self.stop(timeout_s=timeout_s)
        self.kill()

    @property
    def pid(self) -> int:
        """The command's process id (its process group's too)."""
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """Its exit status, or None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        """Whether it has started and not exited."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Wait for the readiness line (once per worker process); fail if it exits first."""
        if self.ready_line is None:
            raise ValueError(f"no readiness line is known for {self.argv[:3]}")
        self.wait_for_output(self.ready_line, count=self.ready_count, timeout_s=timeout_s)

    def wait_for_output(self, text: str, *, count: int = 1, timeout_s: float = 60) -> None:
        """Wait until ``text`` appears ``count`` times in the output; fail if it exits first."""

        def seen() -> bool:
            if self.output().count(text) >= count:
                return True
            if not self.alive():
                raise AssertionError(f"exited before logging {text!r}:\n{self.describe()}")
            return False

        wait_until(seen, timeout_s=timeout_s, what=f"{text!r} x{count}", diagnose=self.describe)

    # -- Signals -------------------------------------------------------------------------------

    def send_sigterm(self) -> None:
        """SIGTERM the command, once, as a process manager does (a second SIGTERM makes
        Dramatiq kill its workers at once)."""
        process = self._started()
        if not self._sigterm_sent and process.poll() is None:
            self._sigterm_sent = True
            process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM (once) and wait for the exit: in-flight messages finish, prefetched ones
        go back to their queue. Returns the exit status; after ``timeout_s`` the group is
        killed and the stop fails."""
        process = self._started()
        self.send_sigterm()
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(
                f"ignored SIGTERM for {timeout_s:g} s:\n{self.describe()}"
            ) from exc

    def kill(self) -> None:
        """SIGKILL the whole process group: the machine died, nothing gets to clean up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)

    def freeze(self) -> None:
        """SIGSTOP the whole process group: every thread stops where it is."""
        os.killpg(self._started().pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the whole process group."""
        os.killpg(self._started().pid, signal.SIGCONT)

    # -- Output ----------------------------------------------------------------------------------

    def output(self) -> str:
        """Everything the command has written so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of its output."""
        return "\n".join(self.output().splitlines()[-lines:])

    def describe(self) -> str:
        """The command line, its exit status and its log tail: what a failure should show."""
        return f"$ {' '.join(self.argv)}  (exit status {self.returncode})\n{self.log_tail(40)}"

    def _started(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"{self.argv[:3]} has not been started")
        return self.process

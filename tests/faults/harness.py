"""Real processes and services that the fault scenarios break on purpose.

Each service here is private to the test run, on a spare loopback port, so a scenario may
stop, kill or restart it while the machine's shared PostgreSQL and Redis stay up for every
other test:

- :class:`RedisServer`: a ``redis-server`` in its own directory (optionally with an
  ``appendfsync always`` AOF, so a crash loses nothing it acknowledged);
- :class:`PostgresCluster`: a throwaway cluster made with ``initdb`` and run by ``pg_ctl``
  (as the ``postgres`` OS user when the tests run as root);
- :class:`SmtpSink`: an aiosmtpd server that counts deliveries per Message-ID and recipient
  and can be stopped and started again on the same port;
- :class:`WorkerGroup`: ``python -m dramatiq gcmc_jobs.worker --processes N --threads T``
  in its own process group, its output captured to a file, to be stopped with SIGTERM or
  killed with SIGKILL like a crashed machine.

Waiting is always bounded: :func:`wait_until` polls a condition until a deadline and fails
with a message naming what it waited for. No test asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], T | bool | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    diagnose: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail after
    ``timeout_s`` seconds with ``what`` (and ``diagnose()``'s text) in the message.

    The timeout is a bound on how long a broken system may hang the suite, never a
    measurement: a scenario passes or fails on what it counts, not on how fast.
    """
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = condition()
        except Exception as exc:  # the condition may hit a service that is coming back
            last = exc
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            detail = diagnose() if diagnose is not None else ""
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})\n{detail}"
            )
        time.sleep(interval_s)


def _as_postgres(command: list[str]) -> list[str]:
    """Run a PostgreSQL server binary as the ``postgres`` user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _postgres_bin(name: str) -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if candidates:
        return str(candidates[0])
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the PostgreSQL server package")
    return found


# -- Redis ---------------------------------------------------------------------------------


class RedisServer:
    """A private ``redis-server`` on a spare port, that a test may crash and restart.

    ``durable=True`` turns on an AOF with ``appendfsync always``: Redis writes every command
    to disk before it replies, so killing it loses nothing a client was told had happened.
    That is the configuration gcmc-jobs documents for production ("Guarantees" in README).
    """

    def __init__(
        self, directory: Path, *, durable: bool = False, password: str | None = None
    ) -> None:
        self.directory = directory
        self.durable = durable
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        userinfo = f":{self.password}@" if self.password else ""
        return f"redis://{userinfo}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10)

    def start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.durable
            else ["--appendonly", "no"]
        )
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--dir",
                str(self.directory),
                "--maxmemory-policy",
                "noeviction",
                *persistence,
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._ping, timeout_s=20, what=f"redis-server on port {self.port}")

    def _ping(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}")
        with contextlib.closing(self.client()) as client:
            return bool(client.ping())

    def kill(self) -> None:
        """Crash Redis: SIGKILL, no chance to save anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)

    def stop(self) -> None:
        """Shut Redis down cleanly (SIGTERM)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


# -- PostgreSQL ----------------------------------------------------------------------------


class PostgresCluster:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) on a spare loopback port.

    ``initdb`` takes about two seconds here, so one cluster serves the whole session; a
    scenario makes an outage with :meth:`stop` / :meth:`start`, which take a fraction of a
    second. Durability settings are off (``fsync=off``): this cluster tests our behaviour when
    the server goes away, not PostgreSQL's crash recovery.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gcmc_faults_pg_"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        subprocess.run(
            _as_postgres(
                [
                    _postgres_bin("initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    _postgres_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.root / "server.log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends every session (their transactions roll back)."""
        subprocess.run(
            _as_postgres(
                [
                    _postgres_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# -- SMTP ------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One message the sink accepted."""

    message_id: str
    dedup_key: str
    recipients: tuple[str, ...]
    subject: str
    message: Message


@dataclass
class _SinkHandler:
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    keep_messages: bool = True
    #: Recipients refused for good (``550``), like a mailbox that does not exist.
    reject: set[str] = field(default_factory=set)
    #: When set, a message is accepted (counted) but the ``250`` reply waits until the
    #: gate opens; ``holding`` is set while a reply waits.
    gate: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(str(r).lower() in self.reject for r in envelope.rcpt_tos):
            return "550 5.1.1 mailbox unavailable"
        reply = self._accept(envelope)
        gate = self.gate
        if gate is not None:
            self.holding.set()
            while not gate.is_set():
                await asyncio.sleep(0.01)
        return reply

    def _accept(self, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content)
        delivery = Delivery(
            message_id=str(parsed.get("Message-ID", "")),
            dedup_key=str(parsed.get("X-GCMC-Dedup-Key", "")),
            recipients=tuple(str(r).lower() for r in envelope.rcpt_tos),
            subject=str(parsed.get("Subject", "")),
            message=parsed if self.keep_messages else Message(),
        )
        with self.lock:
            self.deliveries.append(delivery)
        return "250 Message accepted for delivery"


class SmtpSink:
    """A real SMTP server (aiosmtpd) that counts what it accepted, and can go down.

    :meth:`stop` closes the listening socket (clients get "connection refused", as when a
    mail server is down); :meth:`start` listens again on the same port.
    """

    def __init__(
        self, *, keep_messages: bool = True, credentials: tuple[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.handler = _SinkHandler(keep_messages=keep_messages)
        self.credentials = credentials
        self.logins: list[str] = []
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        userinfo = ""
        if self.credentials is not None:
            userinfo = f"{self.credentials[0]}:{self.credentials[1]}@"
        return f"smtp://{userinfo}127.0.0.1:{self.port}?starttls=off"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        login = data.login.decode() if isinstance(data.login, bytes) else str(data.login)
        password = data.password.decode() if isinstance(data.password, bytes) else data.password
        ok = self.credentials is not None and (login, password) == self.credentials
        if ok:
            self.logins.append(login)
        return AuthResult(success=ok)

    def start(self) -> None:
        if self.credentials is None:
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        else:  # AUTH over plain TCP: loopback only, for the test
            self._controller = Controller(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                authenticator=self._authenticate,
                auth_require_tls=False,
                auth_required=True,
            )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def deliveries(self) -> list[Delivery]:
        with self.handler.lock:
            return list(self.handler.deliveries)

    def count(self) -> int:
        with self.handler.lock:
            return len(self.handler.deliveries)

    def per_recipient(self) -> Counter[str]:
        return Counter(r for d in self.deliveries for r in d.recipients)

    def per_message_id(self) -> Counter[str]:
        return Counter(d.message_id for d in self.deliveries)

    def per_dedup_key(self) -> Counter[str]:
        """Deliveries per logical email (the ``X-GCMC-Dedup-Key`` header)."""
        return Counter(d.dedup_key for d in self.deliveries)


# -- Workers ---------------------------------------------------------------------------------


class WorkerGroup:
    """``dramatiq gcmc_jobs.worker`` as a real subprocess tree, in its own process group.

    ``env`` holds the ``GCMC_JOBS_*`` settings; the rest of the environment is inherited
    minus any ``GCMC_JOBS_*`` of the caller. Output goes to ``log_path``.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_path: Path,
        processes: int = 1,
        threads: int = 4,
        modules: tuple[str, ...] = (),
        queues: tuple[str, ...] = (),
        shutdown_timeout_ms: int = 30_000,
        cwd: Path | None = None,
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.processes = processes
        self.threads = threads
        self.modules = modules
        self.queues = queues
        self.shutdown_timeout_ms = shutdown_timeout_ms
        self.cwd = cwd or log_path.parent
        self.process: subprocess.Popen[bytes] | None = None
        self.started_ms = 0
        self._sigterm_sent = False

    def start(self) -> WorkerGroup:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
        environment.update(self.env)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH", "")])
        )
        environment["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-m",
            "dramatiq",
            "gcmc_jobs.worker",
            *self.modules,
            "--processes",
            str(self.processes),
            "--threads",
            str(self.threads),
            "--worker-shutdown-timeout",
            str(self.shutdown_timeout_ms),
        ]
        if self.queues:
            command += ["--queues", *self.queues]
        self.started_ms = int(time.time() * 1000)
        self._sigterm_sent = False
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            env=environment,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, redis_client: redis.Redis, namespace: str, timeout_s: float = 60) -> None:
        """Wait until every worker process has sent the broker a heartbeat since start."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"worker exited early:\n{self.log_tail()}")
            beats = redis_client.zrangebyscore(
                f"{namespace}:__heartbeats__", self.started_ms, "+inf"
            )
            return len(beats) >= self.processes

        wait_until(ready, timeout_s=timeout_s, what="worker heartbeats", diagnose=self.log_tail)

    def send_sigterm(self) -> None:
        """Send SIGTERM once. (Dramatiq treats a second SIGTERM as "kill now".)"""
        assert self.process is not None
        if not self._sigterm_sent and self.process.poll() is None:
            self._sigterm_sent = True
            self.process.send_signal(signal.SIGTERM)

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM, as an orchestrator does, then wait for the exit: in-flight messages
        finish, prefetched ones are put back on the queue."""
        assert self.process is not None
        self.send_sigterm()
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(f"worker ignored SIGTERM:\n{self.log_tail()}") from exc

    def freeze(self) -> None:
        """SIGSTOP the whole process group: every thread stops where it is."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the whole process group."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole process group: the machine died, nothing gets to clean up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)

    def child_pids(self) -> list[int]:
        """PIDs of the worker processes the ``dramatiq`` master forked."""
        assert self.process is not None
        try:
            out = subprocess.run(
                ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
            ).stdout
        except FileNotFoundError:  # pragma: no cover - procps is in the image
            return []
        return [int(line) for line in out.split()]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def unique_namespace() -> str:
    return f"gcmc_faults_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def running(group: WorkerGroup) -> Iterator[WorkerGroup]:
    """Start ``group`` and make sure it is gone when the block ends, however it ends."""
    group.start()
    try:
        yield group
    finally:
        if group.alive():
            with contextlib.suppress(AssertionError):
                group.terminate(timeout_s=30)
        group.kill()

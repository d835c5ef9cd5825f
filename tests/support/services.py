"""Private services a test may break: a ``redis-server`` and a throwaway PostgreSQL cluster.

Each runs on a spare loopback port, private to the test run, so a test may stop, kill or
restart it while the machine's shared PostgreSQL and Redis stay up for every other test:

- :class:`RedisServer`: a ``redis-server`` in a directory of its own, optionally with an
  ``appendfsync always`` AOF (so a crash loses nothing it acknowledged) or a password;
- :class:`SentinelGroup`: a primary, a replica and three ``redis-server --sentinel``
  processes watching them, whose primary a test may kill to see a failover;
- :class:`PostgresCluster`: a cluster made with ``initdb`` and run by ``pg_ctl`` (as the
  ``postgres`` OS user when the tests run as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import redis

from gcmc_jobs.testing import free_port, wait_until

__all__ = ["PostgresCluster", "RedisServer", "SentinelGroup"]


class RedisServer:
    """A private ``redis-server`` on a spare port, that a test may stop, crash and restart.

    ``durable=True`` turns on an AOF with ``appendfsync always``: Redis writes every command
    to disk before it replies, so killing it loses nothing a client was told had happened.
    That is the configuration gcmc-jobs documents for production ("Guarantees" in README).
    Otherwise nothing is persisted (no RDB snapshot, no AOF). It is started again on the
    same port and files.
    """

    def __init__(
        self,
        directory: Path,
        *,
        durable: bool = False,
        password: str | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.durable = durable
        self.password = password
        #: More ``redis-server`` arguments (``--replicaof host port`` for a replica).
        self.args = tuple(args)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        userinfo = f":{self.password}@" if self.password else ""
        return f"redis://{userinfo}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new client of this server (the caller closes it)."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10)

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.durable
            else ["--appendonly", "no"]
        )
        with (self.directory / "redis.log").open("ab") as log:
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
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            self._ping, timeout_s=20, what=f"redis-server on port {self.port}", diagnose=self._log
        )
        return self

    def _ping(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}")
        with contextlib.closing(self.client()) as client:
            return bool(client.ping())

    def _log(self) -> str:
        log = self.directory / "redis.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""

    def stop(self) -> None:
        """Shut Redis down at once, saving nothing (``SHUTDOWN NOSAVE``), as an outage."""
        if self.process is None or self.process.poll() is not None:
            return
        # It closes the connection as it exits; if it refuses, it is killed below.
        with contextlib.suppress(redis.RedisError), contextlib.closing(self.client()) as client:
            client.shutdown(nosave=True)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Crash Redis: SIGKILL, no chance to save anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)


class SentinelGroup:
    """A primary, a replica and three Sentinels (quorum 2) on spare ports: Redis high
    availability as production runs it, with short timeouts so that a failover takes a few
    seconds (``down_after_ms`` without an answer from the primary, then the vote and the
    promotion). Nothing is persisted. :meth:`start` returns when every Sentinel knows the
    replica and the other Sentinels, so a :meth:`kill_primary` is followed by a failover.
    """

    SERVICE = "mymaster"

    def __init__(self, directory: Path, *, down_after_ms: int = 1_000) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        # A replica's first full sync waits 5 s by default (diskless, for more replicas).
        no_wait = ("--repl-diskless-sync-delay", "0")
        self.primary = RedisServer(directory / "primary", args=no_wait)
        self.replica = RedisServer(
            directory / "replica",
            args=(*no_wait, "--replicaof", "127.0.0.1", str(self.primary.port)),
        )
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the group's primary, database 0."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    def sentinel(self, index: int = 0) -> redis.Redis:
        """A client of Sentinel ``index`` (the caller closes it)."""
        return redis.Redis(
            "127.0.0.1", self.sentinel_ports[index], socket_connect_timeout=2, socket_timeout=5
        )

    def start(self) -> SentinelGroup:
        self.primary.start()
        self.replica.start()
        with contextlib.closing(self.replica.client()) as replica:
            wait_until(
                lambda: replica.info("replication").get("master_link_status") == "up",
                timeout_s=20,
                what="the replica to sync with the primary",
            )
        for index, port in enumerate(self.sentinel_ports):
            folder = self.directory / f"sentinel-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "sentinel.conf"  # a Sentinel rewrites its own configuration
            config.write_text(
                f"bind 127.0.0.1\nport {port}\ndir {folder}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n"
            )
            with (folder / "sentinel.log").open("ab") as log:
                self.sentinels.append(
                    subprocess.Popen(
                        ["redis-server", str(config), "--sentinel"],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for index in range(len(self.sentinel_ports)):
            wait_until(
                lambda i=index: self._knows_everyone(i),  # type: ignore[misc]
                timeout_s=20,
                what=f"Sentinel {index} to see the replica and the other Sentinels",
            )
        return self

    def _knows_everyone(self, index: int) -> bool:
        with contextlib.closing(self.sentinel(index)) as client:
            try:
                state = client.sentinel_master(self.SERVICE)
                replicas = client.sentinel_slaves(self.SERVICE)
            except redis.RedisError:
                return False
        return int(state["num-other-sentinels"]) == 2 and len(replicas) == 1

    def primary_port(self) -> int | None:
        """The port of the primary the Sentinels name now (None when none answers)."""
        for index in range(len(self.sentinel_ports)):
            with contextlib.closing(self.sentinel(index)) as client:
                try:
                    address = client.sentinel_get_master_addr_by_name(self.SERVICE)
                except redis.RedisError:
                    continue
                if address:
                    return int(address[1])
        return None

    def primary_ports(self) -> set[int | None]:
        """The primary's port as each Sentinel names it (None: that one did not answer)."""
        ports: set[int | None] = set()
        for index in range(len(self.sentinel_ports)):
            with contextlib.closing(self.sentinel(index)) as client:
                try:
                    address = client.sentinel_get_master_addr_by_name(self.SERVICE)
                except redis.RedisError:
                    address = None
                ports.add(int(address[1]) if address else None)
        return ports

    def kill_primary(self) -> None:
        """Crash the primary (SIGKILL): what it acknowledged but had not yet sent to the
        replica is lost, as in production."""
        self.primary.kill()

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=20)
        self.replica.kill()
        self.primary.kill()


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


class PostgresCluster:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) on a spare loopback port.

    ``initdb`` takes about two seconds here, so one cluster serves the whole session; a
    scenario makes an outage with :meth:`stop` / :meth:`start`, which take a fraction of a
    second. Durability settings are off (``fsync=off``): this cluster tests our behaviour when
    the server goes away, not PostgreSQL's crash recovery.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gcmc_test_pg_"))
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
        self._pg_ctl("-o", options, "-l", str(self.root / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends every session (their transactions roll back)."""
        self._pg_ctl("-m", mode, "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *arguments: str) -> None:
        command = [_postgres_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *arguments]
        subprocess.run(_as_postgres(command), check=True, capture_output=True)

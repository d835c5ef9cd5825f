"""Fixtures of the fault suite: private services a scenario may break, and worker processes.

The services and the worker class are the suite's one harness (``tests/support``,
``gcmc_jobs.testing``); the SMTP server is the plugin's ``smtp_server`` fixture, which a
scenario may stop and start again on the same port.

Every test in this folder is marked ``faults`` (and runs in the default ``pytest`` run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, text

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from tests.support import PostgresCluster, RedisServer, WorkerProcess, dramatiq_worker

TEMPLATE_DB = "gcmc_faults_template"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the session, with a migrated template database."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        admin = make_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{TEMPLATE_DB}"'))
        admin.dispose()
        template = make_engine(cluster.url(TEMPLATE_DB))
        upgrade(template)
        template.dispose()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def fault_db(pg_cluster: PostgresCluster) -> Iterator[tuple[str, Engine]]:
    """A fresh migrated database on the private cluster: its URL and an engine on it."""
    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"'))
    url = pg_cluster.url(name)
    engine = make_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with contextlib.suppress(Exception):  # the scenario may have left the server down
            pg_cluster.start()
        with contextlib.suppress(Exception), admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fault_dir() -> Iterator[Path]:
    """A scratch directory readable by every process of the scenario (logs, outbox, AOF)."""
    path = Path(tempfile.mkdtemp(prefix="gcmc_faults_"))
    yield path
    # Kept on failure for the logs; tiny otherwise.
    import shutil

    if not os.environ.get("GCMC_FAULTS_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def redis_server(fault_dir: Path) -> Iterator[RedisServer]:
    """A private, durable (AOF, fsync always) Redis that the scenario may crash."""
    server = RedisServer(fault_dir / "redis", durable=True)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def unique_namespace() -> str:
    """A Redis key namespace no other scenario uses."""
    return f"gcmc_faults_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def namespace() -> str:
    return unique_namespace()


#: Settings every worker of the suite runs with, as ``GCMC_JOBS_*`` variables. Retries are
#: fast so that an outage of a few seconds is retried within the scenario.
FAST_RETRIES = {
    "GCMC_JOBS_MIN_BACKOFF_MS": "200",
    "GCMC_JOBS_MAX_BACKOFF_MS": "2000",
    "GCMC_JOBS_LOG_FORMAT": "json",
}


@pytest.fixture
def worker_env(
    fault_db: tuple[str, Engine], redis_server: RedisServer, smtp_server: SmtpSink, namespace: str
) -> dict[str, str]:
    """The environment of this scenario's workers."""
    return {
        "GCMC_JOBS_DATABASE_URL": fault_db[0],
        "GCMC_JOBS_BROKER_URL": redis_server.url,
        "GCMC_JOBS_NAMESPACE": namespace,
        "GCMC_JOBS_EMAIL_URL": smtp_server.url,
        **FAST_RETRIES,
    }


@pytest.fixture
def start_workers(
    fault_dir: Path, worker_env: dict[str, str]
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``dramatiq gcmc_jobs.worker`` processes (4 threads, a 30 s shutdown timeout by
    default); all are killed when the test ends."""
    started: list[WorkerProcess] = []

    def start(
        *,
        processes: int = 1,
        threads: int = 4,
        env: dict[str, str] | None = None,
        shutdown_timeout_ms: int = 30_000,
        **options: Any,
    ) -> WorkerProcess:
        worker = dramatiq_worker(
            {**worker_env, **(env or {})},
            fault_dir / f"worker-{len(started)}.log",
            processes=processes,
            threads=threads,
            shutdown_timeout_ms=shutdown_timeout_ms,
            cwd=fault_dir,
            **options,
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:  # the scenario is over: no need for a graceful stop
        worker.kill()


@pytest.fixture
def producer(worker_env: dict[str, str]) -> Iterator[Runtime]:
    """gcmc-jobs configured in the test process on the scenario's broker, to send messages."""
    settings = Settings(**{k.removeprefix("GCMC_JOBS_").lower(): v for k, v in worker_env.items()})
    # The producer's own "enqueued" events would print one line per message sent.
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        with configured(settings) as runtime:
            yield runtime
    finally:
        structlog.configure(**previous)

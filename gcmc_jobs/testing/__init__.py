"""A pytest plugin for gcmc-jobs and the host applications that use it.

Installed with the package (entry point ``pytest11``), so its fixtures are available in any
test suite as soon as gcmc-jobs is installed:

===================  ========  ===============================================================
fixture              scope     what it gives
===================  ========  ===============================================================
gcmc_postgres_url    session   a fresh, migrated PostgreSQL database, dropped at the end
gcmc_redis_url       session   the Redis URL tests use (checked reachable)
gcmc_namespace       session   a Redis key namespace of this test session alone
gcmc_db              function  an engine on ``gcmc_postgres_url``, every table emptied
gcmc_session         function  a SQLAlchemy session on ``gcmc_db``
gcmc_sqlite_db       function  an engine on a fresh, migrated SQLite file
gcmc_settings        function  :class:`~gcmc_jobs.Settings` for the stub broker and these
gcmc_broker          function  gcmc-jobs configured on Dramatiq's ``StubBroker``
gcmc_worker          function  a started Dramatiq worker (threads) on ``gcmc_broker``
gcmc_worker_process  function  starts real ``dramatiq`` worker processes
                               (:class:`WorkerProcess`), stopped after the test
smtp_server          function  a real SMTP server (aiosmtpd) on a free loopback port:
                               :class:`SmtpSink`
gcmc_outbox          function  the ``memory://`` email transport's outbox, emptied
twilio_server        function  a local HTTP server answering as Twilio's Messages API:
                               :class:`TwilioSink`
gcmc_sms_outbox      function  the ``memory://`` SMS transport's outbox, emptied
gcmc_test_policy     function  the :class:`TestPolicy` ``gcmc_broker`` applies (few, fast retries,
                               bounded joins); override it to change it, ``None`` for none
gcmc_join            function  ``gcmc_join(fail_fast=True, timeout_ms=None)``: wait for every
                               queue of ``gcmc_broker`` and ``gcmc_worker``, bounded
gcmc_tenant          function  a committed :class:`~gcmc_jobs.db.models.Tenant` (most jobs
                               and emails belong to one)
===================  ========  ===============================================================

The real services default to the loopback ones; point elsewhere with
``GCMC_JOBS_TEST_POSTGRES_URL`` (a server URL whose database is used for ``CREATE DATABASE``)
and ``GCMC_JOBS_TEST_REDIS_URL``. When a service is unreachable the run stops at once with a
message saying how to start it. Override ``gcmc_settings`` to change any setting
(``gcmc_settings.model_copy(update={...})`` validates, so strings for secrets are fine).

Under the plugin every actor on ``gcmc_broker`` retries at most twice, 10-100 ms apart, and
``gcmc_broker.join``, ``gcmc_worker.join`` and ``gcmc_join()`` give up after 30 s with a
:class:`JoinTimeout` listing the messages still pending (:mod:`gcmc_jobs.testing.policy`).

The helpers behind the fixtures are importable from here, one concept per module:
:class:`SmtpSink` (:mod:`gcmc_jobs.testing.smtp`, needs aiosmtpd: the ``testing`` extra),
:class:`TwilioSink` (:mod:`gcmc_jobs.testing.twilio`),
:class:`WorkerProcess` and :func:`settings_env` (:mod:`gcmc_jobs.testing.workers`),
:func:`wait_until` (:mod:`gcmc_jobs.testing.waiting`), :func:`capture_events`
(:mod:`gcmc_jobs.testing.logs`), :func:`free_port` (:mod:`gcmc_jobs.testing.ports`),
:class:`TestPolicy` (:mod:`gcmc_jobs.testing.policy`), :func:`join_all`, :func:`pending` and
:class:`JoinTimeout` (:mod:`gcmc_jobs.testing.joining`) and :func:`reset_tables`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from gcmc_jobs import redis_keys
from gcmc_jobs.bootstrap import configured, start_worker
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import Base, Tenant
from gcmc_jobs.email.transports import memory
from gcmc_jobs.redis_urls import redis_from_url
from gcmc_jobs.settings import Settings
from gcmc_jobs.sms.transports import memory as sms_memory
from gcmc_jobs.testing import policy as _policy
from gcmc_jobs.testing.joining import (
    JoinTimeout,
    bounded_broker_join,
    bounded_worker_join,
    join_all,
    pending,
)
from gcmc_jobs.testing.logs import capture_events
from gcmc_jobs.testing.policy import TestPolicy
from gcmc_jobs.testing.ports import free_port
from gcmc_jobs.testing.twilio import TwilioRequest, TwilioSink
from gcmc_jobs.testing.waiting import wait_until
from gcmc_jobs.testing.workers import WorkerProcess, settings_env

if TYPE_CHECKING:
    from gcmc_jobs.testing.smtp import Delivery, SmtpSink

__all__ = [
    "Delivery",
    "JoinTimeout",
    "SmtpSink",
    "TestPolicy",
    "TwilioRequest",
    "TwilioSink",
    "WorkerProcess",
    "capture_events",
    "free_port",
    "gcmc_broker",
    "gcmc_db",
    "gcmc_join",
    "gcmc_namespace",
    "gcmc_outbox",
    "gcmc_postgres_url",
    "gcmc_redis_url",
    "gcmc_session",
    "gcmc_settings",
    "gcmc_sms_outbox",
    "gcmc_sqlite_db",
    "gcmc_tenant",
    "gcmc_test_policy",
    "gcmc_worker",
    "gcmc_worker_process",
    "join_all",
    "pending",
    "reset_tables",
    "settings_env",
    "smtp_server",
    "twilio_server",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    # Lazy loading of an optional extra: the SMTP sink needs aiosmtpd (``gcmc-jobs[testing]``),
    # and this module is imported by every pytest run of a host that installs gcmc-jobs.
    if name in ("SmtpSink", "Delivery"):
        from gcmc_jobs.testing import smtp

        return getattr(smtp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

POSTGRES_HELP = (
    "PostgreSQL is not reachable at {url}: {error}\n"
    "Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
    "or point GCMC_JOBS_TEST_POSTGRES_URL at a server where this user may CREATE DATABASE."
)
REDIS_HELP = (
    "Redis is not reachable at {url}: {error}\n"
    'Start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""\n'
    "or point GCMC_JOBS_TEST_REDIS_URL at one."
)


def reset_tables(engine: Engine) -> None:
    """Empty every gcmc-jobs table (and restart identities on PostgreSQL)."""
    tables = [table.name for table in Base.metadata.sorted_tables]
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                connection.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(scope="session")
def gcmc_postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head, then dropped."""
    server_url = os.environ.get("GCMC_JOBS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"gcmc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any driver error means: not usable
        admin.dispose()
        pytest.exit(POSTGRES_HELP.format(url=server_url, error=exc), returncode=3)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def gcmc_redis_url() -> str:
    """The Redis URL tests use, checked reachable."""
    url = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis_from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(REDIS_HELP.format(url=url, error=exc), returncode=3)
    return url


@pytest.fixture(scope="session")
def gcmc_namespace(gcmc_redis_url: str) -> Iterator[str]:
    """A Redis key namespace for this test session; its keys are deleted at the end."""
    namespace = f"gcmc_test_{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis_from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=redis_keys.namespace_pattern(namespace), count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture(scope="session")
def _gcmc_postgres_engine(gcmc_postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(gcmc_postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def gcmc_db(_gcmc_postgres_engine: Engine) -> Engine:
    """An engine on the session's PostgreSQL database, with every table emptied first."""
    reset_tables(_gcmc_postgres_engine)
    return _gcmc_postgres_engine


@pytest.fixture
def gcmc_session(gcmc_db: Engine) -> Iterator[Session]:
    """A session on ``gcmc_db``; what the test does not commit is rolled back."""
    with Session(gcmc_db, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def gcmc_sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh SQLite file, migrated to head."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gcmc_jobs.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def gcmc_settings(gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str) -> Settings:
    """Settings for tests: the stub broker, the session's PostgreSQL and Redis namespace,
    in-memory email and SMS. Override this fixture to change any of them."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=gcmc_namespace,
        email_url="memory://",
        sms_url="memory://",
        log_format="json",
    )


@pytest.fixture
def gcmc_test_policy() -> TestPolicy | None:
    """The test policy ``gcmc_broker`` and ``gcmc_worker`` apply: :class:`TestPolicy`'s
    defaults (at most 2 retries, 10-100 ms apart; joins bounded by 30 s). Override this
    fixture to change it, or return None to keep every actor's production policy and
    Dramatiq's unbounded joins."""
    return TestPolicy()


@pytest.fixture
def gcmc_broker(
    gcmc_settings: Settings, gcmc_db: Engine, gcmc_test_policy: TestPolicy | None
) -> Iterator[dramatiq.Broker]:
    """gcmc-jobs configured on a ``StubBroker`` (with the whole middleware stack).

    The database is emptied first, and the middleware's deduplication keys, rate-limit
    counters, mail circuit breaker and provider-rate bucket of the namespace are deleted,
    so one test's keys never make another's message a duplicate (or held, or deferred).
    The runtime runs on ``gcmc_db``'s engine, inside :func:`gcmc_jobs.configured`: after
    the test it is closed and whatever was configured before comes back, so no test leaks
    its broker into the next. ``gcmc_test_policy`` caps the retries of every actor
    declared on it (gcmc-jobs' and the host's; restored after the test) and bounds its
    ``join``: a join that runs out of time raises :class:`JoinTimeout` listing what is
    still pending.
    """
    _delete_middleware_keys(gcmc_settings)
    with configured(gcmc_settings, engine=gcmc_db) as runtime:
        broker = runtime.broker
        broker.emit_after("process_boot")
        try:
            if gcmc_test_policy is None:
                yield broker
                return
            with _policy.applied(broker, gcmc_test_policy):
                broker.join = bounded_broker_join(  # type: ignore[method-assign]
                    broker, broker.join, gcmc_test_policy.join_timeout_ms
                )
                try:
                    yield broker
                finally:
                    del broker.join  # the instance's own attribute: back to StubBroker.join
        finally:
            broker.flush_all()


def _delete_middleware_keys(settings: Settings) -> None:
    url = settings.store_redis_url
    if url is None:
        return
    client = redis_from_url(url)
    try:
        for pattern in (redis_keys.dedup_key(settings.namespace, "*"),
                        redis_keys.rate_limit_key(settings.namespace, "*", "*")):  # fmt: skip
            found = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(found), 500):
                client.delete(*found[start : start + 500])
        # The mail circuit breaker and the provider bucket: one test's outage or burst
        # must not hold or defer the next test's email.
        client.delete(
            redis_keys.mail_circuit_key(settings.namespace),
            redis_keys.provider_rate_key(settings.namespace),
        )
    finally:
        client.close()


@pytest.fixture
def gcmc_worker(
    gcmc_broker: dramatiq.Broker, gcmc_test_policy: TestPolicy | None
) -> Iterator[dramatiq.Worker]:
    """A started Dramatiq worker (two threads) on ``gcmc_broker``; its ``join`` is bounded
    by ``gcmc_test_policy``."""
    worker = dramatiq.Worker(gcmc_broker, worker_timeout=50, worker_threads=2)
    if gcmc_test_policy is not None:
        worker.join = bounded_worker_join(  # type: ignore[method-assign]
            worker, worker.join, gcmc_test_policy.join_timeout_ms
        )
    start_worker(worker)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def gcmc_join(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_test_policy: TestPolicy | None,
) -> Callable[..., None]:
    """``gcmc_join(fail_fast=True, timeout_ms=None)``: wait until every queue of
    ``gcmc_broker`` is empty and ``gcmc_worker`` idle (starting the worker), following the
    messages messages send. ``fail_fast`` re-raises the error of a message that failed for
    good (Dramatiq's ``join`` does); ``fail_fast=False`` to assert on its dead letter.
    Bounded by ``timeout_ms`` (default: the test policy's, else 30 s): :class:`JoinTimeout`
    lists what is still pending."""
    default_ms = gcmc_test_policy.join_timeout_ms if gcmc_test_policy else 30_000

    def join(*, fail_fast: bool = True, timeout_ms: int | None = None) -> None:
        join_all(
            gcmc_broker,
            gcmc_worker,
            timeout_ms=timeout_ms if timeout_ms is not None else default_ms,
            fail_fast=fail_fast,
        )

    return join


@pytest.fixture
def gcmc_tenant(gcmc_db: Engine) -> Tenant:
    """A committed tenant (``Test tenant``, UTC), created after the tables are emptied: the
    compliance refresh, the daily jobs and an email's ``tenant_id`` need one."""
    with Session(gcmc_db, expire_on_commit=False) as session:
        tenant = Tenant(name="Test tenant", timezone="UTC")
        session.add(tenant)
        session.commit()
    return tenant


@pytest.fixture
def gcmc_worker_process(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real ``dramatiq`` worker processes for this test; each is stopped after it.

    ``gcmc_worker_process(settings, processes=1, threads=2, queues=(), modules=(...))``
    starts ``python -m dramatiq gcmc_jobs.worker`` (plus ``modules``, the host's own actor
    modules) with ``settings`` as its ``GCMC_JOBS_*`` environment, waits until every
    process is ready and returns its :class:`WorkerProcess` (``stop()``, ``kill()``,
    ``describe()``, ...). ``settings`` must name a broker the test process shares, Redis
    or RabbitMQ: configure the test's own process on the same settings to send to it. The
    test's root directory is put on the workers' ``PYTHONPATH``; their output goes to a file
    in ``tmp_path``. At the end of the test each still running is sent SIGTERM, then killed
    with whatever of its process group remains.
    """
    started: list[WorkerProcess] = []

    def start(
        settings: Settings,
        *,
        processes: int = 1,
        threads: int = 2,
        queues: Sequence[str] = (),
        modules: Sequence[str] = (),
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 60,
    ) -> WorkerProcess:
        worker = WorkerProcess.dramatiq(
            settings=settings,
            env=env,
            modules=("gcmc_jobs.worker", *modules),
            processes=processes,
            threads=threads,
            queues=queues,
            log_path=tmp_path / f"gcmc-worker-{len(started)}.log",
            cwd=tmp_path,
            pythonpath=[request.config.rootpath],
        )
        started.append(worker)
        worker.start()
        worker.wait_ready(timeout_s=ready_timeout_s)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.close()


# -- Email ---------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A started :class:`SmtpSink` (a real aiosmtpd SMTP server on a free loopback port),
    stopped after the test. Needs aiosmtpd (``pip install gcmc-jobs[testing]``)."""
    # Lazy loading of an optional extra (aiosmtpd), as for the module attribute above.
    from gcmc_jobs.testing.smtp import SmtpSink

    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def gcmc_outbox() -> Iterator[list[Any]]:
    """The messages the ``memory://`` email transport sent (emptied before and after)."""
    memory.outbox.clear()
    yield memory.outbox
    memory.outbox.clear()


# -- SMS -----------------------------------------------------------------------------------


@pytest.fixture
def twilio_server() -> Iterator[TwilioSink]:
    """A started :class:`TwilioSink` (a local HTTP server answering as Twilio's Messages API)
    on a free loopback port, stopped after the test; ``twilio_server.settings()`` are the
    settings that point gcmc-jobs at it."""
    with TwilioSink() as sink:
        yield sink


@pytest.fixture
def gcmc_sms_outbox() -> Iterator[list[Any]]:
    """The messages the ``memory://`` SMS transport sent (emptied before and after)."""
    sms_memory.outbox.clear()
    yield sms_memory.outbox
    sms_memory.outbox.clear()

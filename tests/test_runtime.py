"""The Runtime owns the process's connections, and gcmc_jobs.configured() puts back exactly
what was configured before it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, event

import gcmc_jobs
from gcmc_jobs import brokers, runtime
from gcmc_jobs.actors import refresh_compliance
from gcmc_jobs.bootstrap import start_worker
from gcmc_jobs.errors import NotConfiguredError
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import wait_until


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Everything in-process: a SQLite file, the stub broker, in-memory email and stores."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'runtime.sqlite3'}",
        broker_url="stub://",
        redis_url=None,
        email_url="memory://",
    )


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """The process as `import gcmc_jobs` leaves it (and as this test must leave it)."""
    assert runtime.installed() is None
    yield
    assert runtime.installed() is None
    assert refresh_compliance.broker is brokers.unconfigured


def test_configured_restores_the_runtime_the_binding_and_the_global_broker(
    settings: Settings, unconfigured: None
) -> None:
    global_before = dramatiq.broker.global_broker
    # Given a host configured as the dramatiq command line is (global broker set)
    with gcmc_jobs.configured(settings, set_global=True) as host:
        # When a block configures gcmc-jobs again
        with gcmc_jobs.configured(settings, set_global=True) as inner:
            assert gcmc_jobs.current() is inner
            assert refresh_compliance.broker is inner.broker
            assert dramatiq.broker.global_broker is inner.broker
        # Then the host's runtime, binding and global broker are back
        assert gcmc_jobs.current() is host
        assert refresh_compliance.broker is host.broker
        assert dramatiq.broker.global_broker is host.broker
    assert dramatiq.broker.global_broker is global_before


def test_configured_leaves_an_unconfigured_process_unconfigured_even_when_the_block_fails(
    settings: Settings, unconfigured: None
) -> None:
    with pytest.raises(RuntimeError, match="a step failed"), gcmc_jobs.configured(settings):
        raise RuntimeError("a step failed")
    with pytest.raises(NotConfiguredError):
        gcmc_jobs.current()
    with pytest.raises(NotConfiguredError):
        refresh_compliance.send(1)


def test_the_runtime_disposes_the_engine_it_built_and_leaves_a_given_one_open(
    settings: Settings, gcmc_sqlite_db: Engine
) -> None:
    disposed: list[Engine] = []
    built = gcmc_jobs.Runtime(settings)
    event.listen(built.engine, "engine_disposed", lambda conn: disposed.append(built.engine))
    given = gcmc_jobs.Runtime(settings, engine=gcmc_sqlite_db)
    event.listen(gcmc_sqlite_db, "engine_disposed", lambda conn: disposed.append(gcmc_sqlite_db))

    built.close()
    given.close()

    assert len(disposed) == 1
    assert disposed[0] is not gcmc_sqlite_db


def test_the_dead_letter_store_writes_with_the_runtimes_engine(
    settings: Settings, gcmc_sqlite_db: Engine
) -> None:
    owned = gcmc_jobs.Runtime(settings, engine=gcmc_sqlite_db)
    try:
        assert owned.stores.dead_letters.engine is gcmc_sqlite_db  # type: ignore[attr-defined]
    finally:
        owned.close()


def test_two_runtimes_share_no_connection_or_store(settings: Settings) -> None:
    first, second = gcmc_jobs.Runtime(settings), gcmc_jobs.Runtime(settings)
    try:
        assert first.engine is not second.engine
        assert first.email_transport is not second.email_transport
        assert first.stores.pauses is not second.stores.pauses
        assert first.broker is not second.broker
    finally:
        first.close()
        second.close()


class _SlowStart(logging.Filter):
    """Holds each Dramatiq worker and consumer thread at its first step ("Running ...
    thread..."), before it sets its ``running`` flag: the window a ``stop()`` is lost in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Running "):
            time.sleep(0.2)
        return True


@pytest.fixture
def slow_thread_start() -> Iterator[None]:
    names = [f"dramatiq.worker.{name}" for name in ("WorkerThread", "ConsumerThread(default)")]
    names.append("dramatiq.worker.ConsumerThread(default.DQ)")
    loggers = [logging.getLogger(name) for name in names]
    held = _SlowStart()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addFilter(held)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeFilter(held)
        logger.setLevel(level)


def test_start_worker_returns_once_every_thread_runs_so_a_stop_at_once_is_kept(
    slow_thread_start: None,
) -> None:
    # Given a stub broker with a declared queue, whose worker threads are slow to start
    broker = StubBroker()
    broker.declare_queue("default")
    started_plainly = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    started = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)

    # When one worker is started as Dramatiq starts it, and one with start_worker
    started_plainly.start()
    plain_threads = [*started_plainly.workers, *started_plainly.consumers.values()]
    running_after_plain_start = [thread.running for thread in plain_threads]
    start_worker(started)
    threads = [*started.workers, *started.consumers.values()]

    # Then Dramatiq's start returned before its threads ran (a stop now would be undone),
    # while start_worker returned with each of its threads running, and its stop ends them
    assert len(threads) == 4  # two worker threads, consumers of "default" and its delay queue
    assert running_after_plain_start == [False] * 4
    assert all(thread.running for thread in threads)
    started.stop(timeout=10_000)
    assert not any(thread.is_alive() for thread in threads)
    wait_until(lambda: all(thread.running for thread in plain_threads), what="plain threads")
    started_plainly.stop(timeout=10_000)


class _NoSecondThread(dramatiq.Worker):
    """A Dramatiq worker that cannot start its second worker thread, as in a process that
    may start no more threads: its ``start()`` raises with three threads started."""

    def _add_worker(self) -> None:
        if self.workers:
            raise RuntimeError("can't start new thread")
        super()._add_worker()


def test_a_worker_whose_start_fails_is_stopped_with_the_threads_it_had_started(
    slow_thread_start: None,
) -> None:
    # Given a worker whose start fails once its consumers and first worker thread started
    broker = StubBroker()
    broker.declare_queue("default")
    worker = _NoSecondThread(broker, worker_threads=2, worker_timeout=50)

    # When it is started with start_worker
    with pytest.raises(RuntimeError, match="can't start new thread"):
        start_worker(worker)

    # Then the start's error reached the caller, and no thread it had started runs on
    threads = [*worker.workers, *worker.consumers.values()]
    assert len(threads) == 3  # one worker thread, consumers of "default" and its delay queue
    assert not any(thread.is_alive() for thread in threads)

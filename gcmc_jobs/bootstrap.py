"""Start-up: build a :class:`~gcmc_jobs.runtime.Runtime`, bind the actors to its broker, and
make it the process's current runtime.

:func:`configure` is the one call a host application (or ``gcmc_jobs.worker``) makes at
start-up; :func:`configured` does the same for a block and then puts back exactly what was
there before (the CLI, the demo, tests, a host running gcmc-jobs for a while). This module
imports the actors (so every one is declared before binding): it sits above them in the
layering, and the runtime they read (:mod:`gcmc_jobs.runtime`) below them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq import broker as dramatiq_broker
from dramatiq.worker import ConsumerThread, WorkerThread
from sqlalchemy import Engine

import gcmc_jobs.actors  # noqa: F401  (declares every actor on brokers.unconfigured)
from gcmc_jobs import brokers
from gcmc_jobs import runtime as _runtime
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.scheduling.jobs import import_host_modules
from gcmc_jobs.settings import Settings

__all__ = ["configure", "configured", "start_worker"]

logger = get_logger("gcmc_jobs.bootstrap")


def configure(
    settings: Settings | None = None,
    *,
    broker: dramatiq.Broker | None = None,
    set_global: bool = False,
    engine: Engine | None = None,
) -> Runtime:
    """Build a runtime from ``settings``, bind gcmc-jobs' actors to its broker, and make it
    the current runtime (:func:`gcmc_jobs.current`).

    ``settings`` defaults to ``Settings()`` (read from ``GCMC_JOBS_*``). Pass ``broker`` to
    use one you built (it should carry :func:`gcmc_jobs.brokers.build_middleware`'s stack),
    ``engine`` to use your database engine. ``set_global=True`` also makes the broker
    Dramatiq's global broker, which the ``dramatiq`` and ``periodiq`` command lines need; a
    host application usually leaves its own alone. A runtime configured before is replaced,
    not closed (use :func:`configured` to get it back).

    Then it imports the host's modules named by ``settings.host_modules``
    (``GCMC_JOBS_HOST_MODULES``), which declare the host's actors (``@gcmc_jobs.actor``,
    bound to this broker as they are declared) and register its daily jobs.
    """
    runtime = Runtime(
        settings if settings is not None else Settings(), broker=broker, engine=engine
    )
    previous = _runtime.installed()
    previous_global = dramatiq_broker.global_broker
    brokers.bind(runtime.broker)
    if set_global:
        dramatiq.set_broker(runtime.broker)
    _runtime.install(runtime)
    try:
        import_host_modules(runtime.settings)
    except BaseException:
        # A host module that cannot be imported leaves the process as it found it.
        _restore(runtime, previous, previous_global if set_global else _KEEP_GLOBAL)
        raise
    return runtime


_KEEP_GLOBAL = object()


def _restore(runtime: Runtime, previous: Runtime | None, previous_global: object) -> None:
    """Close ``runtime`` and put back the binding, the current runtime and (unless
    ``previous_global`` is ``_KEEP_GLOBAL``) Dramatiq's global broker."""
    try:
        runtime.close()
    finally:
        brokers.bind(previous.broker if previous is not None else brokers.unconfigured)
        if previous_global is not _KEEP_GLOBAL:  # None puts back "no global broker"
            dramatiq.set_broker(previous_global)  # type: ignore[arg-type]
        _runtime.install(previous)


@contextmanager
def configured(
    settings: Settings | None = None,
    *,
    broker: dramatiq.Broker | None = None,
    set_global: bool = False,
    engine: Engine | None = None,
) -> Iterator[Runtime]:
    """:func:`configure` for the ``with`` block; on exit the runtime is closed (its broker,
    engine, transport and stores: see :meth:`~gcmc_jobs.runtime.Runtime.close`) and what was
    configured before is restored exactly: the actors' binding, the current runtime, and
    Dramatiq's global broker when ``set_global`` replaced it. ::

        with gcmc_jobs.configured(Settings(broker_url="stub://")) as runtime:
            refresh_compliance.send(tenant_id=42)
    """
    previous = _runtime.installed()
    previous_global = dramatiq_broker.global_broker
    runtime = configure(settings, broker=broker, set_global=set_global, engine=engine)
    try:
        yield runtime
    finally:
        _restore(runtime, previous, previous_global if set_global else _KEEP_GLOBAL)


def start_worker(worker: dramatiq.Worker) -> dramatiq.Worker:
    """``worker.start()``, then wait until each of its worker and consumer threads runs, so
    that a ``worker.stop()`` right after cannot be lost; returns ``worker``.

    Dramatiq's ``WorkerThread`` and ``ConsumerThread`` set their own ``running`` flag as the
    first step of their thread. A ``stop()`` that comes before it (a test or a command that
    ends at once, on a busy machine) is undone by it: the thread runs on, and ``stop()``
    waits for it for its whole timeout (ten minutes by default). The in-process workers of
    the CLI, the demo and the ``gcmc_worker`` fixture are started with this. A thread that
    ended before it ran (it raised at start) is not waited for.

    If ``worker.start()`` raises (a middleware's ``before_worker_boot`` refused, a thread
    could not be started, Ctrl-C), the threads it had started are stopped, the same way,
    before the error goes on: a failed start leaves nothing running, and the caller nothing
    to stop. An error of that stop is logged; the start's error is the one raised."""
    try:
        worker.start()
    except BaseException:
        _wait_until_running(worker)
        try:
            worker.stop()
        except Exception:
            logger.exception("worker_stop_after_failed_start_failed")
        raise
    _wait_until_running(worker)
    return worker


def _wait_until_running(worker: dramatiq.Worker) -> None:
    """Wait until each of ``worker``'s threads has set its ``running`` flag (or ended)."""
    threads: list[WorkerThread | ConsumerThread] = [*worker.workers, *worker.consumers.values()]
    while any(thread.is_alive() and not thread.running for thread in threads):
        time.sleep(0.001)

"""The configured state of a process: its settings, broker and database engine.

:func:`configure` is the one call a host application (or ``gcmc_jobs.worker``) makes at
start-up. Actors read the state back with :func:`current`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import dramatiq
from sqlalchemy import Engine

from gcmc_jobs import broker as _broker
from gcmc_jobs.db.engine import engine_for
from gcmc_jobs.errors import NotConfiguredError
from gcmc_jobs.settings import Settings

__all__ = ["Runtime", "configure", "current"]


@dataclass
class Runtime:
    """What :func:`configure` built: read by actors through :func:`current`."""

    settings: Settings
    broker: dramatiq.Broker
    _engine: Engine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def engine(self) -> Engine:
        """The process-wide database engine, created on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = engine_for(
                    self.settings.database_url.get_secret_value(),
                    pool_size=self.settings.database_pool_size,
                    max_overflow=self.settings.database_max_overflow,
                )
            return self._engine


_current: Runtime | None = None


def configure(
    settings: Settings | None = None,
    *,
    broker: dramatiq.Broker | None = None,
    set_global: bool = False,
) -> Runtime:
    """Bind gcmc-jobs' actors to a broker built from ``settings`` and remember both.

    ``settings`` defaults to ``Settings()`` (read from ``GCMC_JOBS_*``). Pass ``broker`` to
    use one you built (it should carry :func:`gcmc_jobs.broker.build_middleware`'s stack).
    ``set_global=True`` also makes it Dramatiq's global broker, which the ``dramatiq`` and
    ``periodiq`` command lines need; a host application usually leaves its own alone.
    """
    global _current
    settings = settings if settings is not None else Settings()
    broker = broker if broker is not None else _broker.build_broker(settings)
    # Import the actors so that every one of them is declared before binding.
    import gcmc_jobs.actors  # noqa: F401

    _broker.bind(broker)
    if set_global:
        dramatiq.set_broker(broker)
    _current = Runtime(settings=settings, broker=broker)
    return _current


def current() -> Runtime:
    """The runtime :func:`configure` built; raises :class:`NotConfiguredError` before."""
    if _current is None:
        raise NotConfiguredError(
            "gcmc_jobs is not configured: call gcmc_jobs.configure() at start-up."
        )
    return _current

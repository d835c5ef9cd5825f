"""Pausing and resuming queues (``gcmc-jobs pause`` / ``resume``, the admin API).

The paused set is a :class:`~gcmc_jobs.middleware.stores.pauses.PauseStore`: one Redis set
shared by every worker of the deployment, or, without Redis, the in-process stub of the
process's runtime (the one its ``Pause`` middleware reads), so that the admin API and the
workers of one process (the embedded demo) agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gcmc_jobs.errors import UnknownQueue
from gcmc_jobs.middleware.stores.pauses import PauseStore, RedisPauseStore, StubPauseStore
from gcmc_jobs.ops.known_queues import known_queues
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.runtime import installed
from gcmc_jobs.settings import Settings

__all__ = ["pause_queue", "pause_store_for", "paused_queues", "resume_queue"]


def pause_store_for(settings: Settings) -> PauseStore:
    """The store ``settings`` call for: a Redis store on ``settings.store_redis_url`` (on
    :func:`~gcmc_jobs.ops.redis_client.redis_client`: bounded by
    ``settings.health_timeout_ms``); else the pause store of the configured runtime (when it
    runs on the same namespace), else a new, empty stub."""
    url = settings.store_redis_url
    if url is not None:
        client = redis_client(url, timeout_ms=settings.health_timeout_ms)
        return RedisPauseStore(client, namespace=settings.namespace)
    runtime = installed()
    if runtime is not None and runtime.settings.namespace == settings.namespace:
        return runtime.stores.pauses
    return StubPauseStore()


@contextmanager
def _using(settings: Settings, store: PauseStore | None) -> Iterator[PauseStore]:
    """``store``, or :func:`pause_store_for`'s, closed after use when it was made here."""
    if store is not None:
        yield store
        return
    made = pause_store_for(settings)
    try:
        yield made
    finally:
        if isinstance(made, RedisPauseStore):
            made.close()


def _checked(settings: Settings, queue: str) -> str:
    known = known_queues(settings)
    if queue not in known:
        raise UnknownQueue(f"unknown queue {queue!r}; known queues: {', '.join(known)}")
    return queue


def paused_queues(settings: Settings, *, store: PauseStore | None = None) -> frozenset[str]:
    """The names of the paused queues. ``store`` defaults to :func:`pause_store_for`."""
    with _using(settings, store) as used:
        return used.paused()


def pause_queue(settings: Settings, queue: str, *, store: PauseStore | None = None) -> bool:
    """Pause ``queue`` on every worker; True when it was running. Raises
    :class:`~gcmc_jobs.errors.UnknownQueue` for a name no worker or actor uses. ``store``
    defaults to :func:`pause_store_for`."""
    with _using(settings, store) as used:
        return used.pause(_checked(settings, queue))


def resume_queue(settings: Settings, queue: str, *, store: PauseStore | None = None) -> bool:
    """Resume ``queue``; True when it was paused. Resuming an unknown but paused name is
    allowed (so a mistaken pause can always be undone)."""
    with _using(settings, store) as used:
        if queue in used.paused():
            return used.resume(queue)
        return used.resume(_checked(settings, queue))

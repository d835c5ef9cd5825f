"""Which queues are paused: a store with a Redis implementation and an in-process stub.

The flag lives in one Redis set, ``{namespace}:gcmc:paused``, so every worker of the
deployment sees the same answer; the :class:`~gcmc_jobs.middleware.pause.Pause` middleware
reads it (cached) and the ``gcmc-jobs pause`` / ``resume`` commands and the admin API write it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

from gcmc_jobs.errors import UnknownQueue
from gcmc_jobs.settings import Settings

__all__ = [
    "PauseStore",
    "RedisPauseStore",
    "StubPauseStore",
    "pause_queue",
    "pause_store_for",
    "paused_key",
    "resume_queue",
]


def paused_key(namespace: str) -> str:
    """The Redis set holding the names of the paused queues."""
    return f"{namespace}:gcmc:paused"


class PauseStore(ABC):
    """Where the paused queue names are kept."""

    @abstractmethod
    def pause(self, queue: str) -> bool:
        """Pause ``queue``; True when it was running before."""

    @abstractmethod
    def resume(self, queue: str) -> bool:
        """Resume ``queue``; True when it was paused before."""

    @abstractmethod
    def paused(self) -> frozenset[str]:
        """The names of every paused queue."""


class RedisPauseStore(PauseStore):
    """Paused queues in a Redis set shared by every worker of the namespace.

    ``client`` is a ``redis.Redis``; ``timeout_ms`` (default 2,000) bounds each call when the
    store builds its own client from a URL.
    """

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.key = paused_key(namespace)

    @classmethod
    def from_url(cls, url: str, *, namespace: str, timeout_ms: int = 2_000) -> RedisPauseStore:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=timeout_ms / 1000, socket_connect_timeout=timeout_ms / 1000
        )
        return cls(client, namespace=namespace)

    def pause(self, queue: str) -> bool:
        return bool(self.client.sadd(self.key, queue))

    def resume(self, queue: str) -> bool:
        return bool(self.client.srem(self.key, queue))

    def paused(self) -> frozenset[str]:
        members = self.client.smembers(self.key)
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)


class StubPauseStore(PauseStore):
    """Paused queues in process memory: for the stub broker, tests and the demo."""

    def __init__(self) -> None:
        self._paused: set[str] = set()
        self._lock = threading.Lock()

    def pause(self, queue: str) -> bool:
        with self._lock:
            before = queue in self._paused
            self._paused.add(queue)
            return not before

    def resume(self, queue: str) -> bool:
        with self._lock:
            before = queue in self._paused
            self._paused.discard(queue)
            return before

    def paused(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._paused)


# One stub per namespace, so that the middleware and the API of one process agree.
_stubs: dict[str, StubPauseStore] = {}
_stubs_lock = threading.Lock()


def pause_store_for(settings: Settings) -> PauseStore:
    """The store ``settings`` call for: Redis at ``settings.store_redis_url``, else the
    process's stub for ``settings.namespace``."""
    url = settings.store_redis_url
    if url is not None:
        return RedisPauseStore.from_url(url, namespace=settings.namespace)
    with _stubs_lock:
        return _stubs.setdefault(settings.namespace, StubPauseStore())


def _checked(settings: Settings, queue: str) -> str:
    from gcmc_jobs.ops.queues import known_queues

    known = known_queues(settings)
    if queue not in known:
        raise UnknownQueue(f"unknown queue {queue!r}; known queues: {', '.join(known)}")
    return queue


def pause_queue(settings: Settings, queue: str) -> bool:
    """Pause ``queue`` on every worker; True when it was running. Raises
    :class:`~gcmc_jobs.errors.UnknownQueue` for a name no worker or actor uses."""
    return pause_store_for(settings).pause(_checked(settings, queue))


def resume_queue(settings: Settings, queue: str) -> bool:
    """Resume ``queue``; True when it was paused. Resuming an unknown but paused name is
    allowed (so a mistaken pause can always be undone)."""
    store = pause_store_for(settings)
    if queue in store.paused():
        return store.resume(queue)
    return store.resume(_checked(settings, queue))

"""Which queues are paused: a store with a Redis implementation and an in-process stub.

The flag lives in one Redis set (:func:`gcmc_jobs.redis_keys.paused_key`), so every worker
of the deployment sees the same answer; the :class:`~gcmc_jobs.middleware.pause.Pause`
middleware reads it (cached) and the ``gcmc-jobs pause`` / ``resume`` commands and the admin
API write it (:mod:`gcmc_jobs.ops.pauses`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

from gcmc_jobs.redis_keys import paused_key
from gcmc_jobs.redis_urls import redis_from_url

__all__ = ["PauseStore", "RedisPauseStore", "StubPauseStore"]


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

    def close(self) -> None:  # noqa: B027 (a no-op by default: stubs hold no connection)
        """Release what the store holds (connections); the default holds nothing."""


class RedisPauseStore(PauseStore):
    """Paused queues in a Redis set shared by every worker of the namespace.

    ``client`` is a ``redis.Redis``; :meth:`from_url` builds one whose every call gives up
    after ``timeout_ms`` (default 2,000).
    """

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.key = paused_key(namespace)

    @classmethod
    def from_url(cls, url: str, *, namespace: str, timeout_ms: int = 2_000) -> RedisPauseStore:
        """A store on its own client for ``url`` (closed by :meth:`close`)."""
        client = redis_from_url(
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

    def close(self) -> None:
        self.client.close()


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

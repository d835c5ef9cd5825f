"""Deduplication key stores: who owns a key, and whether its message is pending or done.

A key's value is ``p:<message id>`` while its message is pending (enqueued, running or
waiting for a retry) and ``d:<message id>`` once it succeeded; it expires after its TTL. The
owner's own message id never counts as a duplicate, so the enqueue-time claim, a retry and a
rate-limit deferral (same message id) never make a message skip itself.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any

from gcmc_jobs import redis_keys as keys

__all__ = ["ClaimResult", "DedupStore", "RedisDedupStore", "StubDedupStore"]


class ClaimResult(IntEnum):
    """What claiming a key for a message found."""

    #: Another message owns the key: this one is a duplicate.
    DUPLICATE = 0
    #: The key is now (or already was) pending for this message: run it.
    CLAIMED = 1
    #: This very message already succeeded (a redelivery): do not run it again.
    DONE = 2


class DedupStore(ABC):
    """Where deduplication keys live. Every method is one atomic operation."""

    @abstractmethod
    def claim(self, key: str, owner: str, ttl_ms: int) -> ClaimResult:
        """Claim ``key`` for message ``owner`` (pending, expiring in ``ttl_ms``)."""

    @abstractmethod
    def claim_many(self, claims: Sequence[tuple[str, str, int]]) -> list[ClaimResult]:
        """Claim many ``(key, owner, ttl_ms)`` at once (one round trip); results in order.

        Two claims of one key in the same batch: the first wins.
        """

    @abstractmethod
    def complete(self, key: str, owner: str, ttl_ms: int) -> None:
        """Mark ``key`` done for ``owner`` and keep it ``ttl_ms`` more; no-op if not owned."""

    def complete_many(self, completions: Sequence[tuple[str, str, int]]) -> None:
        """:meth:`complete` many ``(key, owner, ttl_ms)`` at once (one round trip)."""
        for key, owner, ttl_ms in completions:
            self.complete(key, owner, ttl_ms)

    @abstractmethod
    def release(self, key: str, owner: str) -> None:
        """Free ``key`` if ``owner`` holds it pending (its message failed for good)."""


# KEYS: the dedup keys; ARGV: owner, ttl_ms pairs in the same order.
_CLAIM = """
local results = {}
for i, key in ipairs(KEYS) do
  local owner = ARGV[2 * i - 1]
  local value = redis.call('GET', key)
  if not value then
    redis.call('SET', key, 'p:' .. owner, 'PX', ARGV[2 * i])
    results[i] = 1
  elseif string.sub(value, 3) == owner then
    if string.sub(value, 1, 1) == 'p' then results[i] = 1 else results[i] = 2 end
  else
    results[i] = 0
  end
end
return results
"""

# KEYS: the keys; ARGV: owner, ttl_ms pairs in the same order.
_COMPLETE = """
for i, key in ipairs(KEYS) do
  local owner = ARGV[2 * i - 1]
  local value = redis.call('GET', key)
  if value == 'p:' .. owner or value == 'd:' .. owner then
    redis.call('SET', key, 'd:' .. owner, 'PX', ARGV[2 * i])
  end
end
return #KEYS
"""

# KEYS[1]: the key; ARGV: owner, ttl_ms ('' to release).
_FINISH = """
local value = redis.call('GET', KEYS[1])
if value ~= 'p:' .. ARGV[1] and value ~= 'd:' .. ARGV[1] then return 0 end
if ARGV[2] == '' then
  if string.sub(value, 1, 1) == 'p' then redis.call('DEL', KEYS[1]) end
else
  redis.call('SET', KEYS[1], 'd:' .. ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class RedisDedupStore(DedupStore):
    """Keys in Redis, each check one Lua script (atomic across every worker process).

    ``client`` is a ``redis.Redis``; ``namespace`` prefixes every key (:mod:`..keys`).
    """

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._complete = client.register_script(_COMPLETE)

    def claim(self, key: str, owner: str, ttl_ms: int) -> ClaimResult:
        return self.claim_many([(key, owner, ttl_ms)])[0]

    def claim_many(self, claims: Sequence[tuple[str, str, int]]) -> list[ClaimResult]:
        if not claims:
            return []
        redis_keys = [keys.dedup_key(self.namespace, key) for key, _, _ in claims]
        args: list[str | int] = []
        for _, owner, ttl_ms in claims:
            args += [owner, int(ttl_ms)]
        return [ClaimResult(int(r)) for r in self._claim(keys=redis_keys, args=args)]

    def complete(self, key: str, owner: str, ttl_ms: int) -> None:
        self._finish(keys=[keys.dedup_key(self.namespace, key)], args=[owner, int(ttl_ms)])

    def complete_many(self, completions: Sequence[tuple[str, str, int]]) -> None:
        if not completions:
            return
        args: list[str | int] = []
        for _, owner, ttl_ms in completions:
            args += [owner, int(ttl_ms)]
        self._complete(
            keys=[keys.dedup_key(self.namespace, key) for key, _, _ in completions], args=args
        )

    def release(self, key: str, owner: str) -> None:
        self._finish(keys=[keys.dedup_key(self.namespace, key)], args=[owner, ""])


class StubDedupStore(DedupStore):
    """Keys in a dict of this process (tests, single process). ``clock`` returns seconds."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.values: dict[str, tuple[str, str, float]] = {}  # key -> (state, owner, expires)
        self._lock = threading.Lock()

    def _live(self, key: str) -> tuple[str, str, float] | None:
        value = self.values.get(key)
        if value is not None and value[2] <= self.clock():
            del self.values[key]
            return None
        return value

    def claim(self, key: str, owner: str, ttl_ms: int) -> ClaimResult:
        with self._lock:
            value = self._live(key)
            if value is None:
                self.values[key] = ("p", owner, self.clock() + ttl_ms / 1000)
                return ClaimResult.CLAIMED
            if value[1] == owner:
                return ClaimResult.CLAIMED if value[0] == "p" else ClaimResult.DONE
            return ClaimResult.DUPLICATE

    def claim_many(self, claims: Sequence[tuple[str, str, int]]) -> list[ClaimResult]:
        return [self.claim(key, owner, ttl_ms) for key, owner, ttl_ms in claims]

    def complete(self, key: str, owner: str, ttl_ms: int) -> None:
        with self._lock:
            value = self._live(key)
            if value is not None and value[1] == owner:
                self.values[key] = ("d", owner, self.clock() + ttl_ms / 1000)

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            value = self._live(key)
            if value is not None and value[1] == owner and value[0] == "p":
                del self.values[key]

"""Rate-limit counters: book a slot for one message in the first window that has room.

Windows are fixed, aligned on multiples of ``window_ms`` since the epoch. Booking is a
reservation: a message over the limit books a slot in a later window and carries that
window's number (``rate_limit_window``) when it is re-enqueued, so it runs without booking
again and deferred messages never stampede the next window. A check is one atomic call.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

from gcmc_jobs import redis_keys as keys
from gcmc_jobs.redis_scripts import ScriptRunner

__all__ = ["Booking", "RateLimitStore", "RedisRateLimitStore", "StubRateLimitStore"]


class Booking(NamedTuple):
    """Where a message's slot is: ``delay_ms`` from now (0: now) in window number ``window``.

    ``window`` is ``None`` when no window up to the last allowed one has room.
    """

    delay_ms: int
    window: int | None


class RateLimitStore(ABC):
    """Where the per-window counters live."""

    @abstractmethod
    def book(
        self,
        limit_class: str,
        key: str,
        *,
        now_ms: int,
        window_ms: int,
        limit: int,
        latest_ms: int,
        reserved: int | None = None,
    ) -> Booking:
        """Book one slot for ``key`` in the first window with fewer than ``limit`` bookings,
        starting no later than ``latest_ms``; a message already ``reserved`` in a window that
        has begun is let through without booking again."""


# KEYS[1]: counter prefix. ARGV: now_ms, window_ms, limit, last window no, reserved (-1: none)
_BOOK = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local last = tonumber(ARGV[4])
local reserved = tonumber(ARGV[5])
local current = math.floor(now / window)
if reserved >= 0 then
  if reserved <= current then return {0, reserved} end
  return {reserved * window - now, reserved}
end
for w = current, last do
  local key = KEYS[1] .. ':' .. w
  local count = tonumber(redis.call('GET', key) or '0')
  if count < limit then
    redis.call('INCR', key)
    if count == 0 then redis.call('PEXPIREAT', key, (w + 2) * window) end
    local delay = w * window - now
    if delay < 0 then delay = 0 end
    return {delay, w}
  end
end
return {-1, -1}
"""


def _last_window(latest_ms: int, window_ms: int) -> int:
    return latest_ms // window_ms


class RedisRateLimitStore(RateLimitStore):
    """Counters in Redis, one Lua script per check (no WATCH/MULTI loop to collapse).

    The check runs on every keyed message, in the worker's hot path, so it is sent with a
    :class:`~gcmc_jobs.redis_scripts.ScriptRunner` (a connection per thread, ``EVALSHA``
    straight on it; redis-py's ordinary path as the fallback).
    """

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._book = ScriptRunner(client, client.register_script(_BOOK))

    def book(
        self,
        limit_class: str,
        key: str,
        *,
        now_ms: int,
        window_ms: int,
        limit: int,
        latest_ms: int,
        reserved: int | None = None,
    ) -> Booking:
        counter = keys.rate_limit_key(self.namespace, limit_class, key)
        args = (
            now_ms,
            window_ms,
            limit,
            _last_window(latest_ms, window_ms),
            -1 if reserved is None else reserved,
        )
        delay, window = self._book(keys=[counter], args=args)
        return Booking(0, None) if int(window) < 0 else Booking(int(delay), int(window))


class StubRateLimitStore(RateLimitStore):
    """Counters in a dict of this process (tests, single process)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def book(
        self,
        limit_class: str,
        key: str,
        *,
        now_ms: int,
        window_ms: int,
        limit: int,
        latest_ms: int,
        reserved: int | None = None,
    ) -> Booking:
        current = now_ms // window_ms
        if reserved is not None:
            return Booking(max(0, reserved * window_ms - now_ms), reserved)
        with self._lock:
            for window in range(current, _last_window(latest_ms, window_ms) + 1):
                count = self.counts.get((limit_class, key, window), 0)
                if count < limit:
                    self.counts[(limit_class, key, window)] = count + 1
                    return Booking(max(0, window * window_ms - now_ms), window)
        return Booking(0, None)

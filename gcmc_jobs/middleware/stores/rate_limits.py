"""Rate-limit counters: book a slot for one message in the first window that has room.

Windows are fixed, aligned on multiples of ``window_ms`` since the epoch. Booking is a
reservation: a message over the limit books a slot in a later window and carries that
window's number (``rate_limit_window``) when it is re-enqueued, so it runs without booking
again and deferred messages never stampede the next window. A check is one atomic call;
:meth:`RateLimitStore.book_many` books a whole fetched batch in one, and
:meth:`RateLimitStore.refund` gives back a slot booked for a message that did not run.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

from gcmc_jobs import redis_keys as keys
from gcmc_jobs.redis_scripts import ScriptRunner

__all__ = [
    "Booking",
    "BookingRequest",
    "RateLimitStore",
    "RedisRateLimitStore",
    "StubRateLimitStore",
]


class Booking(NamedTuple):
    """Where a message's slot is: ``delay_ms`` from now (0: now) in window number ``window``.

    ``window`` is ``None`` when no window up to the last allowed one has room.
    """

    delay_ms: int
    window: int | None


class BookingRequest(NamedTuple):
    """One slot to book in :meth:`RateLimitStore.book_many`: ``key`` of ``limit_class``, at
    most ``limit`` a window, in a window starting no later than ``latest_ms``."""

    limit_class: str
    key: str
    limit: int
    latest_ms: int


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

    def book_many(
        self, requests: Sequence[BookingRequest], *, now_ms: int, window_ms: int
    ) -> list[Booking]:
        """:meth:`book` each request (none reserved) in order, atomically as a whole where
        the store can (one round trip for Redis): two requests for one key take two slots."""
        return [
            self.book(
                r.limit_class,
                r.key,
                now_ms=now_ms,
                window_ms=window_ms,
                limit=r.limit,
                latest_ms=r.latest_ms,
            )
            for r in requests
        ]

    def refund(self, limit_class: str, key: str, window: int) -> None:  # noqa: B027
        """Give back one slot booked for ``key`` in window number ``window`` (its message was
        skipped before it ran); nothing when the window's counter is gone. This default
        keeps the slot spent (a store written before refunds existed): only ever fewer
        messages run than the limit allows."""


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


# KEYS: counter prefixes, one per request. ARGV: now_ms, window_ms, then limit and last
# window number per request. Returns delay and window per request (-1, -1: no room).
_BOOK_MANY = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local current = math.floor(now / window)
local results = {}
for i, prefix in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i + 1])
  local last = tonumber(ARGV[2 * i + 2])
  local delay, booked = -1, -1
  for w = current, last do
    local key = prefix .. ':' .. w
    local count = tonumber(redis.call('GET', key) or '0')
    if count < limit then
      redis.call('INCR', key)
      if count == 0 then redis.call('PEXPIREAT', key, (w + 2) * window) end
      delay = w * window - now
      if delay < 0 then delay = 0 end
      booked = w
      break
    end
  end
  results[2 * i - 1] = delay
  results[2 * i] = booked
end
return results
"""

# KEYS[1]: the window's counter. One slot back, never below zero, only while it exists.
_REFUND = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return count
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
        self._book_many = ScriptRunner(client, client.register_script(_BOOK_MANY))
        self._refund = ScriptRunner(client, client.register_script(_REFUND))

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

    def book_many(
        self, requests: Sequence[BookingRequest], *, now_ms: int, window_ms: int
    ) -> list[Booking]:
        if not requests:
            return []
        counters = [keys.rate_limit_key(self.namespace, r.limit_class, r.key) for r in requests]
        args: list[int] = [now_ms, window_ms]
        for r in requests:
            args += [r.limit, _last_window(r.latest_ms, window_ms)]
        # Integers already (Lua numbers come back as RESP integers): pairs read straight off
        # the reply, no slices or int() a message.
        found = iter(self._book_many(keys=counters, args=args))
        return [
            Booking(delay, window) if window >= 0 else Booking(0, None)
            for delay, window in zip(found, found, strict=True)
        ]

    def refund(self, limit_class: str, key: str, window: int) -> None:
        counter = keys.rate_limit_key(self.namespace, limit_class, key)
        self._refund(keys=[f"{counter}:{window}"], args=[])


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

    def refund(self, limit_class: str, key: str, window: int) -> None:
        with self._lock:
            count = self.counts.get((limit_class, key, window), 0)
            if count > 0:
                self.counts[(limit_class, key, window)] = count - 1

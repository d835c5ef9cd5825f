"""The provider-wide send rate's token bucket: a Redis implementation shared by every worker
and an in-process stub.

The bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; sending
one email takes one token. Critical mail may take the bucket down to empty; other mail only
while more than ``floor`` tokens remain (the reserved share), so a bulk backlog never eats
the budget of password resets. A taker refused gets how long to wait; the
:class:`~gcmc_jobs.middleware.provider_rate.ProviderRate` middleware defers its message by
that much. One atomic call per email (the Lua script
:data:`gcmc_jobs.redis_scripts.PROVIDER_RATE_SCRIPT`).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from typing import Any

from gcmc_jobs.redis_keys import provider_rate_key
from gcmc_jobs.redis_scripts import PROVIDER_RATE_SCRIPT, ScriptRunner

__all__ = ["RedisTokenBucket", "StubTokenBucket", "TokenBucket"]


class TokenBucket(ABC):
    """Where the provider-wide bucket lives."""

    @abstractmethod
    def take(self, *, now_ms: int, rate: float, burst: int, floor: int, waited: bool) -> int:
        """Take one token, leaving at least ``floor`` in the bucket: 0 when taken, else the
        wait in ms before trying again. ``waited``: this taker was refused before (it leaves
        the waiting line that spreads refused takers out)."""

    def close(self) -> None:  # noqa: B027 (a no-op by default: stubs hold no connection)
        """Release what the store holds; the default holds nothing."""


class RedisTokenBucket(TokenBucket):
    """The bucket in one Redis hash (:func:`gcmc_jobs.redis_keys.provider_rate_key`), taken
    with one ``EVALSHA`` on a per-thread connection
    (:class:`~gcmc_jobs.redis_scripts.ScriptRunner`)."""

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.key = provider_rate_key(namespace)
        self._take = ScriptRunner(client, client.register_script(PROVIDER_RATE_SCRIPT))

    def take(self, *, now_ms: int, rate: float, burst: int, floor: int, waited: bool) -> int:
        args = (now_ms, repr(float(rate)), burst, floor, int(waited))
        return int(self._take(keys=[self.key], args=args))


class StubTokenBucket(TokenBucket):
    """The same bucket in process memory (one process: tests, the embedded demo)."""

    def __init__(self) -> None:
        self.tokens: float | None = None
        self.ts = 0
        self.waiting = 0
        self._lock = threading.Lock()

    def take(self, *, now_ms: int, rate: float, burst: int, floor: int, waited: bool) -> int:
        with self._lock:
            tokens = float(burst) if self.tokens is None else self.tokens
            ts = now_ms if self.tokens is None else self.ts
            if waited and self.waiting > 0:
                self.waiting -= 1
            if now_ms > ts:
                tokens = min(float(burst), tokens + (now_ms - ts) * rate / 1000)
            now_ms = max(now_ms, ts)
            wait = 0
            if tokens - 1 >= floor:
                tokens -= 1
            elif floor > 0:
                self.waiting += 1
                wait = math.ceil((floor + self.waiting - tokens) * 1000 / rate)
            else:
                wait = math.ceil((1 - tokens) * 1000 / rate)
            self.tokens, self.ts = tokens, now_ms
            return wait

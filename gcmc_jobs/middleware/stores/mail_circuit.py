"""The mail server's circuit breaker state: a Redis implementation shared by every worker and
an in-process stub.

States (:class:`CircuitState`)::

    closed ──(``threshold`` delivery failures in a row)──▶ open
    open ──(a probe of the server succeeds)──▶ half_open
    half_open ──(an email is delivered)──▶ closed
    half_open ──(a delivery fails)──▶ open, the probe backoff doubled
    open ──(an email started before the trip is delivered after all)──▶ closed

While ``open``, one worker of the whole deployment probes the server when
``next_probe_ms`` comes (:meth:`CircuitStore.claim_probe` is the lock: it moves the next
probe on by a doubled backoff, up to a maximum, before the probe starts). Every transition
is one atomic call (a Lua script on Redis), so concurrent workers never see half a change.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from gcmc_jobs.redis_keys import mail_circuit_key

__all__ = [
    "CircuitState",
    "CircuitStore",
    "RedisCircuitStore",
    "StubCircuitStore",
]

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CircuitState:
    """What the breaker knows (every time in ms since the epoch)."""

    #: ``closed`` (mail flows), ``open`` (held), ``half_open`` (critical mail first).
    state: State = "closed"
    #: Delivery failures in a row since the last success.
    failures: int = 0
    #: When the breaker last opened from ``closed``.
    opened_at_ms: int | None = None
    #: When the next probe is due (``open`` only).
    next_probe_ms: int | None = None
    #: The current probe backoff, ms.
    backoff_ms: int | None = None
    #: When the last probe succeeded (``half_open`` only).
    half_open_at_ms: int | None = None
    #: How many times the breaker opened from ``closed``, and probes made, ever.
    trips: int = 0
    probes: int = 0
    #: The last delivery or probe error seen.
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)


def _parse(flat: list[Any]) -> CircuitState:
    """A ``HGETALL`` reply (flat ``[field, value, ...]``) as a :class:`CircuitState`."""
    raw = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in zip(flat[::2], flat[1::2], strict=True)
    }

    def number(name: str) -> int | None:
        value = raw.get(name)
        return None if value in (None, "") else int(float(value))

    state = raw.get("state", "closed")
    return CircuitState(
        state=state if state in ("open", "half_open") else "closed",  # type: ignore[arg-type]
        failures=number("failures") or 0,
        opened_at_ms=number("opened_at"),
        next_probe_ms=number("next_probe_at"),
        backoff_ms=number("backoff_ms"),
        half_open_at_ms=number("half_open_at"),
        trips=number("trips") or 0,
        probes=number("probes") or 0,
        last_error=raw.get("last_error"),
    )


class CircuitStore(ABC):
    """Where the breaker's state lives; every method is one atomic step and returns the
    state after it."""

    @abstractmethod
    def state(self) -> CircuitState:
        """The current state."""

    @abstractmethod
    def record_failure(
        self, *, now_ms: int, threshold: int, min_backoff_ms: int, max_backoff_ms: int, error: str
    ) -> CircuitState:
        """A delivery failed (connection error or 4xx): count it; open the breaker at the
        ``threshold``-th failure in a row (first probe ``min_backoff_ms`` later), or at once
        when half open (the backoff doubled, at most ``max_backoff_ms``)."""

    @abstractmethod
    def record_success(self, *, now_ms: int) -> CircuitState:
        """An email was delivered: the run of failures ends and the breaker closes."""

    @abstractmethod
    def claim_probe(self, *, now_ms: int, max_backoff_ms: int) -> tuple[bool, CircuitState]:
        """True when the caller is to probe now: the breaker is open and its probe is due.
        The next probe is moved on by the doubled backoff first, so only one caller wins."""

    @abstractmethod
    def probe_succeeded(self, *, now_ms: int) -> CircuitState:
        """The server answered a probe: an open breaker becomes half open."""

    @abstractmethod
    def probe_failed(self, *, error: str) -> CircuitState:
        """A probe failed: the error is kept; the next probe stays where the claim put it."""

    @abstractmethod
    def reset(self) -> CircuitState:
        """Forget everything: closed, no failures (an operator's override)."""

    def close(self) -> None:  # noqa: B027 (a no-op by default: stubs hold no connection)
        """Release what the store holds; the default holds nothing."""


_GET = "return redis.call('HGETALL', KEYS[1])"

# ARGV: now, threshold, min backoff, max backoff, error
_FAILURE = (
    """
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HSET', KEYS[1], 'last_error', ARGV[5])
if st ~= 'open' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if st == 'half_open' or failures >= tonumber(ARGV[2]) then
    local backoff = tonumber(ARGV[3])
    if st == 'half_open' then
      local last = tonumber(redis.call('HGET', KEYS[1], 'backoff_ms')) or backoff
      backoff = math.min(tonumber(ARGV[4]), last * 2)
    else
      redis.call('HINCRBY', KEYS[1], 'trips', 1)
      redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
    end
    redis.call('HSET', KEYS[1], 'state', 'open', 'next_probe_at', tonumber(ARGV[1]) + backoff,
      'backoff_ms', backoff)
    redis.call('HDEL', KEYS[1], 'half_open_at')
  end
end
"""
    + _GET
)

# ARGV: now
_SUCCESS = (
    """
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'open' or st == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('HDEL', KEYS[1], 'opened_at', 'next_probe_at', 'half_open_at', 'backoff_ms')
end
redis.call('HSET', KEYS[1], 'failures', 0)
"""
    + _GET
)

# ARGV: now, max backoff. Returns {won (0/1), HGETALL...}
_CLAIM = """
local won = 0
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  local now = tonumber(ARGV[1])
  if now >= (tonumber(redis.call('HGET', KEYS[1], 'next_probe_at')) or 0) then
    local last = tonumber(redis.call('HGET', KEYS[1], 'backoff_ms')) or 1000
    local backoff = math.min(tonumber(ARGV[2]), last * 2)
    redis.call('HSET', KEYS[1], 'next_probe_at', now + backoff, 'backoff_ms', backoff)
    redis.call('HINCRBY', KEYS[1], 'probes', 1)
    won = 1
  end
end
local reply = redis.call('HGETALL', KEYS[1])
table.insert(reply, 1, won)
return reply
"""

# ARGV: now
_PROBE_OK = (
    """
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'half_open_at', ARGV[1], 'failures', 0)
end
"""
    + _GET
)

# ARGV: error
_PROBE_FAILED = "redis.call('HSET', KEYS[1], 'last_error', ARGV[1])\n" + _GET


class RedisCircuitStore(CircuitStore):
    """The state in one Redis hash (:func:`gcmc_jobs.redis_keys.mail_circuit_key`), shared by
    every worker of the namespace. Only failures, the first success after one, and probes
    write; workers read it at most once per refresh (the middleware caches it)."""

    def __init__(self, client: Any, *, namespace: str) -> None:
        self.client = client
        self.key = mail_circuit_key(namespace)
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)
        self._claim = client.register_script(_CLAIM)
        self._probe_ok = client.register_script(_PROBE_OK)
        self._probe_failed = client.register_script(_PROBE_FAILED)

    def state(self) -> CircuitState:
        return _parse(self._flat(self.client.hgetall(self.key)))

    @staticmethod
    def _flat(mapping: dict[Any, Any]) -> list[Any]:
        return [item for pair in mapping.items() for item in pair]

    def record_failure(
        self, *, now_ms: int, threshold: int, min_backoff_ms: int, max_backoff_ms: int, error: str
    ) -> CircuitState:
        args = [now_ms, threshold, min_backoff_ms, max_backoff_ms, error[:500]]
        return _parse(self._failure(keys=[self.key], args=args))

    def record_success(self, *, now_ms: int) -> CircuitState:
        return _parse(self._success(keys=[self.key], args=[now_ms]))

    def claim_probe(self, *, now_ms: int, max_backoff_ms: int) -> tuple[bool, CircuitState]:
        reply = self._claim(keys=[self.key], args=[now_ms, max_backoff_ms])
        return bool(int(reply[0])), _parse(reply[1:])

    def probe_succeeded(self, *, now_ms: int) -> CircuitState:
        return _parse(self._probe_ok(keys=[self.key], args=[now_ms]))

    def probe_failed(self, *, error: str) -> CircuitState:
        return _parse(self._probe_failed(keys=[self.key], args=[error[:500]]))

    def reset(self) -> CircuitState:
        self.client.delete(self.key)
        return CircuitState()


class StubCircuitStore(CircuitStore):
    """The same state machine in process memory (one process: tests, the embedded demo)."""

    def __init__(self) -> None:
        self._state = CircuitState()
        self._lock = threading.Lock()

    def state(self) -> CircuitState:
        with self._lock:
            return self._state

    def record_failure(
        self, *, now_ms: int, threshold: int, min_backoff_ms: int, max_backoff_ms: int, error: str
    ) -> CircuitState:
        with self._lock:
            s = replace(self._state, last_error=error[:500])
            if s.state != "open":
                s = replace(s, failures=s.failures + 1)
                if s.state == "half_open" or s.failures >= threshold:
                    backoff = min_backoff_ms
                    if s.state == "half_open":
                        backoff = min(max_backoff_ms, (s.backoff_ms or backoff) * 2)
                    else:
                        s = replace(s, trips=s.trips + 1, opened_at_ms=now_ms)
                    s = replace(
                        s,
                        state="open",
                        next_probe_ms=now_ms + backoff,
                        backoff_ms=backoff,
                        half_open_at_ms=None,
                    )
            self._state = s
            return s

    def record_success(self, *, now_ms: int) -> CircuitState:
        with self._lock:
            s = replace(self._state, failures=0)
            if s.state != "closed":
                s = replace(
                    s,
                    state="closed",
                    opened_at_ms=None,
                    next_probe_ms=None,
                    half_open_at_ms=None,
                    backoff_ms=None,
                )
            self._state = s
            return s

    def claim_probe(self, *, now_ms: int, max_backoff_ms: int) -> tuple[bool, CircuitState]:
        with self._lock:
            s = self._state
            if s.state != "open" or now_ms < (s.next_probe_ms or 0):
                return False, s
            backoff = min(max_backoff_ms, (s.backoff_ms or 1000) * 2)
            s = replace(s, next_probe_ms=now_ms + backoff, backoff_ms=backoff, probes=s.probes + 1)
            self._state = s
            return True, s

    def probe_succeeded(self, *, now_ms: int) -> CircuitState:
        with self._lock:
            if self._state.state == "open":
                self._state = replace(
                    self._state, state="half_open", half_open_at_ms=now_ms, failures=0
                )
            return self._state

    def probe_failed(self, *, error: str) -> CircuitState:
        with self._lock:
            self._state = replace(self._state, last_error=error[:500])
            return self._state

    def reset(self) -> CircuitState:
        with self._lock:
            self._state = CircuitState()
            return self._state

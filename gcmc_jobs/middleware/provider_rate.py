"""``ProviderRate``: a cluster-wide cap on emails per second, the mail provider's send rate.

Providers cap how fast an account may send (SES, Postmark, SendGrid: some per second).
Before an email message runs, one atomic call takes a token from a bucket every worker
shares (:class:`~gcmc_jobs.middleware.stores.provider_rate.RedisTokenBucket`, the Lua script
:data:`gcmc_jobs.redis_scripts.PROVIDER_RATE_SCRIPT`): ``rate`` tokens per second, at most ``burst``
at once. Without a token, a copy of the message (same id, so its dedup claim stays its own)
is re-enqueued with the wait the bucket names and the original is skipped: not an attempt,
so no retry is consumed, and never dropped or failed however long the backlog.

**Critical email keeps a reserved share**: mail of the critical queues (password resets) may
empty the bucket; other mail may take a token only while more than ``reserved`` tokens
(``critical_reserve_percent`` of ``burst``, rounded down, at most ``burst - 1``) remain. A
bulk backlog therefore leaves password resets a share of every second's budget.

It sits after ``Deduplication`` (a duplicate takes no token) and before the per-recipient
``RateLimits``, on top of it: a message deferred by its recipient's limit has taken a
provider token it did not use, which only ever sends less than the rate, never more. On
other queues, and with ``rate=None`` (the default: ``GCMC_JOBS_PROVIDER_RATE`` unset), it
does nothing.

Metrics: ``gcmc_jobs_provider_rate_deferred_total{queue}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage
from prometheus_client import Counter

from gcmc_jobs import queue_names
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context
from gcmc_jobs.middleware._context import message_fields
from gcmc_jobs.middleware.metrics import REGISTRY
from gcmc_jobs.middleware.selection import MessageShape, SelectionInput
from gcmc_jobs.middleware.stores.provider_rate import TokenBucket

__all__ = ["ProviderRate", "reserved_tokens"]

logger = get_logger("gcmc_jobs.middleware.provider_rate")

DEFERRED = Counter(
    "gcmc_jobs_provider_rate_deferred",
    "Email messages deferred because the provider-wide send rate was reached.",
    ["queue"],
    registry=REGISTRY,
)


def reserved_tokens(burst: int, percent: int) -> int:
    """Tokens only critical mail may take: ``percent`` of ``burst``, rounded down, at most
    ``burst - 1`` (so other mail can always send)."""
    return max(0, min(burst - 1, burst * percent // 100))


class ProviderRate(Middleware):
    """Defer email over the provider-wide rate; see the module docstring.

    Parameters:
      store: the shared bucket.
      rate: emails per second across the deployment (may be fractional); None: no limit.
      burst: the bucket's size, emails sendable at once after a quiet spell (default: one
        second's worth, at least 1).
      critical_reserve_percent: the share of ``burst`` kept for critical mail (20).
      queues: the queues it applies to (both email queues); critical_queues: those that may
        use the reserved share (``gcmc_email_critical``).
      clock: the time in seconds (``time.time``); tests pass a fake one.

    On gcmc-jobs' brokers its hook is not called for messages of other queues, nor without
    a ``rate`` (:meth:`wants_before_process_message`); assigning ``rate`` or ``queues`` is
    seen at once.
    """

    rate = SelectionInput[float | None]()
    queues = SelectionInput[frozenset[str]]()

    def __init__(
        self,
        store: TokenBucket,
        *,
        rate: float | None = None,
        burst: int | None = None,
        critical_reserve_percent: int = 20,
        queues: Iterable[str] = (queue_names.EMAIL, queue_names.EMAIL_CRITICAL),
        critical_queues: Iterable[str] = (queue_names.EMAIL_CRITICAL,),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"the provider rate must be positive (or None: no limit), got {rate}")
        self.store = store
        self.rate = rate
        self.burst = max(1, burst if burst is not None else int(rate or 1))
        self.reserved = reserved_tokens(self.burst, critical_reserve_percent)
        self.queues = frozenset(queues)
        self.critical_queues = frozenset(critical_queues)
        self.clock = clock

    def _rate_of(self, queue_name: str) -> float | None:
        """The rate limiting ``queue_name``'s messages, emails/s; None: not limited (the
        hook does nothing then)."""
        return self.rate if queue_name in self.queues else None

    def wants_before_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """False off the limited queues, or with no rate."""
        return self._rate_of(shape.queue_name) is not None

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        rate = self._rate_of(message.queue_name)
        if rate is None:
            return
        critical = message.queue_name in self.critical_queues
        deferrals = int(message.options.get("provider_rate_deferrals") or 0)
        wait = self.store.take(
            now_ms=int(self.clock() * 1000),
            rate=rate,
            burst=self.burst,
            floor=0 if critical else self.reserved,
            waited=deferrals > 0 and not critical,
        )
        if wait <= 0:
            return
        deferred = message.copy(options={"provider_rate_deferrals": deferrals + 1})
        token = _context.REENQUEUE.set("provider_rate")
        try:
            broker.enqueue(deferred, delay=wait)
        finally:
            _context.REENQUEUE.reset(token)
        DEFERRED.labels(queue=message.queue_name).inc()
        logger.debug("provider_rate_deferred", delay_ms=wait, **message_fields(message))
        raise SkipMessage(f"provider send rate reached: deferred {wait} ms")

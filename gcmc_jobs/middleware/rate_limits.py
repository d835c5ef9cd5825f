"""Rate limits: at most N messages per key (e.g. per recipient) per window, cluster-wide.

The key comes from the ``rate_limit_key`` message option, else the actor option (template or
callable, like ``dedup_key``); a message without one is not limited. Its class
(``rate_limit_class``: ``"default"`` or ``"security"``, or any class given in ``limits``)
picks the limit, and each class counts separately.

Before a message runs, one atomic store call books it a slot in the first fixed window with
room. Over the limit, a copy (same message id, so its dedup claim stays its own) is
re-enqueued with a delay to its booked window, then the original is skipped (acknowledged):
not a retry, not a failure; logged (``rate_limited``) and counted. A message that would be
deferred more than ``max_deferral`` in total is failed for good (``dead_letter_reason`` =
``"rate_limit_max_deferral"``), so :class:`~.dead_letters.DeadLetters` records it. If the
re-enqueue itself fails, :class:`~gcmc_jobs.errors.RateLimitDeferralFailed` makes the
attempt fail so ``Retries`` retries it: the message is never acknowledged and lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from gcmc_jobs.errors import RateLimitDeferralFailed
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context, metrics
from gcmc_jobs.middleware._context import message_fields, resolve_key
from gcmc_jobs.middleware.stores.rate_limits import RateLimitStore

__all__ = ["MAX_DEFERRAL_REASON", "RateLimits"]

logger = get_logger("gcmc_jobs.middleware.rate_limits")

#: ``dead_letter_reason`` of a message deferred past ``max_deferral``.
MAX_DEFERRAL_REASON = "rate_limit_max_deferral"


class RateLimits(Middleware):
    """Defer messages over a per-key limit per window.

    Parameters:
      store: the counters (:class:`~.stores.rate_limits.RedisRateLimitStore` cluster-wide,
        :class:`~.stores.rate_limits.StubRateLimitStore` in one process).
      limit: messages per key per window of class ``"default"`` (20).
      window: the window, ms (3,600,000: one hour).
      limits: limits of other classes, e.g. ``{"security": 10}``; a class missing here uses
        ``limit``.
      max_deferral: the longest total deferral before a message is dead-lettered, ms (24 h).
      clock: returns the time in seconds (``time.time``); tests pass a fake one.
    """

    def __init__(
        self,
        store: RateLimitStore,
        *,
        limit: int = 20,
        window: int = 3_600_000,
        limits: Mapping[str, int] | None = None,
        max_deferral: int = 86_400_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.limit = limit
        self.window = window
        self.limits = dict(limits or {})
        self.max_deferral = max_deferral
        self.clock = clock

    @property
    def actor_options(self) -> set[str]:
        return {"rate_limit_key", "rate_limit_class"}

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        # Resolve an actor template once, at send time; the worker reads the option.
        if "rate_limit_key" not in message.options:
            key = resolve_key(broker, message, "rate_limit_key")
            if key is not None:
                message.options["rate_limit_key"] = key

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        key = message.options.get("rate_limit_key")
        if key is None:
            return
        options = message.options
        limit_class = str(_context.option(broker, message, "rate_limit_class", "default"))
        limit = self.limits.get(limit_class, self.limit)
        now_ms = int(self.clock() * 1000)
        deferred_ms = int(options.get("rate_limit_deferred_ms") or 0)
        booking = self.store.book(
            limit_class,
            str(key),
            now_ms=now_ms,
            window_ms=self.window,
            limit=limit,
            latest_ms=now_ms + max(0, self.max_deferral - deferred_ms),
            reserved=options.get("rate_limit_window"),
        )
        if booking.window is None:
            options["dead_letter_reason"] = MAX_DEFERRAL_REASON
            logger.warning(
                "rate_limit_deferral_exceeded",
                limit_class=limit_class,
                deferred_ms=deferred_ms,
                max_deferral_ms=self.max_deferral,
                **message_fields(message),
            )
            message.fail()
            raise SkipMessage(f"deferred past {self.max_deferral} ms by rate limit")
        if booking.delay_ms == 0:
            return
        deferred = message.copy(
            options={
                "rate_limit_window": booking.window,
                "rate_limit_deferred_ms": deferred_ms + booking.delay_ms,
                "rate_limit_deferrals": int(options.get("rate_limit_deferrals") or 0) + 1,
            }
        )
        token = _context.REENQUEUE.set("rate_limited")
        try:
            broker.enqueue(deferred, delay=booking.delay_ms)
        except Exception as exc:
            logger.error("rate_limit_deferral_failed", error=repr(exc), **message_fields(message))
            raise RateLimitDeferralFailed(
                f"could not defer message {message.message_id}: {exc!r}"
            ) from exc
        finally:
            _context.REENQUEUE.reset(token)
        logger.info(
            "rate_limited",
            delay_ms=booking.delay_ms,
            limit_class=limit_class,
            window=booking.window,
            **message_fields(message),
        )
        metrics.rate_limited(message.actor_name, limit_class)
        raise SkipMessage(f"rate limited: deferred {booking.delay_ms} ms")

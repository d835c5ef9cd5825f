"""Rate limits: at most N messages per key (e.g. per recipient) per window, cluster-wide.

The key comes from the ``rate_limit_key`` message option, else the actor option (template or
callable, like ``dedup_key``); a message without one is not limited. Its class
(``rate_limit_class``: ``"default"`` or ``"security"``, or any class given in ``limits``)
picks the limit, and each class counts separately.

Before a message runs, it is booked a slot in the first fixed window with room, in one
atomic store call. On gcmc-jobs' Redis broker that call books a whole fetched batch: the
consumer books the slots of the batch's keyed messages as soon as it has fetched them
(:meth:`RateLimits.after_fetch`), in one call, before it hands any of them to a worker
thread; each message finds its slot made when it runs (the batch travels on each fetched
message, in the worker only, never written to Redis). If that call fails (the store is
unreachable), the first of the batch to run books it, as each message does elsewhere (stub
broker, RabbitMQ: booked just before it runs). A slot booked with the batch is used only in
its window: if that window ended before the message ran (it waited in the worker's
prefetch), the message books again and the first slot stays spent; a message skipped before
it runs (paused queue, duplicate, provider rate) gives its slot back (or is left out of a
booking not made yet); a message of a booked batch that never runs (its worker stopped or
died) keeps its slot spent for the window. Both errors only ever run fewer than the limit
allows.

Over the limit, a copy (same message id, so its dedup claim stays its own) is
re-enqueued with a delay to its booked window, then the original is skipped (acknowledged):
not a retry, not a failure; logged (``rate_limited``) and counted. A message that would be
deferred more than ``max_deferral`` in total is failed for good (``dead_letter_reason`` =
``"rate_limit_max_deferral"``), so :class:`~.dead_letters.DeadLetters` records it. If the
re-enqueue itself fails, :class:`~gcmc_jobs.errors.RateLimitDeferralFailed` makes the
attempt fail so ``Retries`` retries it: the message is never acknowledged and lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from gcmc_jobs.errors import RateLimitDeferralFailed
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context, metrics
from gcmc_jobs.middleware._context import message_fields, resolve_key
from gcmc_jobs.middleware.selection import MessageShape
from gcmc_jobs.middleware.stores.rate_limits import Booking, BookingRequest, RateLimitStore

__all__ = ["MAX_DEFERRAL_REASON", "RateLimits"]

logger = get_logger("gcmc_jobs.middleware.rate_limits")

#: ``dead_letter_reason`` of a message deferred past ``max_deferral``.
MAX_DEFERRAL_REASON = "rate_limit_max_deferral"
#: Attribute of a fetched message (Dramatiq's ``MessageProxy``, which lives only in the
#: worker) holding the batch it was fetched with (:meth:`RateLimits.after_fetch`).
FETCHED_BATCH = "_gcmc_rate_limit_batch"
#: The message option holding a message's resolved rate-limit key (an actor's template is
#: resolved into it at enqueue): a message without it is not limited.
KEY_OPTION = "rate_limit_key"


#: A message's booked slot: what was booked (limit class and key) and where. A plain tuple,
#: not a NamedTuple: one is made for each fetched message, and a NamedTuple's ``__new__`` is
#: a Python function (~0.3 µs here).
_Prebooked = tuple[BookingRequest, Booking]


#: What a fetched message books: limit class, key, limit, ms deferred so far.
_Pending = tuple[str, str, int, int]


class _FetchedBatch:
    """The keyed messages of one fetched batch, booked together in one store call: by the
    consumer as it fetched them (:meth:`RateLimits.after_fetch`), else by the first of them
    to reach :meth:`RateLimits.before_process_message` (the others of the batch wait for
    that call, or find their slot made).

    The consumer books it rather than the first worker thread (an extra round trip before
    the consumer fetches again, while three quarters of its prefetch are still queued):
    with the first worker thread booking, the others of the batch queued on the batch's
    lock behind the store call, and the email-shaped message cost ~30 % more worker CPU
    (``benchmarks/worker_overhead.py --only-email``, issue 17)."""

    def __init__(self, limits: RateLimits, requests: dict[str, _Pending]):
        self.limits = limits
        #: message id -> what to book for it (its latest window is known only when booked)
        self.pending = requests
        self.booked: dict[str, _Prebooked] | None = None
        #: the window that had begun when the batch was booked
        self.booked_in = 0
        self.lock = threading.Lock()

    def book(self) -> None:
        """Book the whole batch, unless it is booked already."""
        with self.lock:
            self._booked()

    def take(self, message_id: str) -> _Prebooked | None:
        """This message's slot, booking the whole batch first if nobody has yet."""
        with self.lock:
            return self._booked().pop(message_id, None)

    def _booked(self) -> dict[str, _Prebooked]:
        # Under the lock: the bookings, made now if nobody has yet.
        if self.booked is None:
            self.booked = self._book()
        return self.booked

    def withdraw(self, message_id: str) -> _Prebooked | None:
        """The message will not run: out of the booking if not made yet, else its slot."""
        with self.lock:
            if self.booked is None:
                self.pending.pop(message_id, None)
                return None
            return self.booked.pop(message_id, None)

    def _book(self) -> dict[str, _Prebooked]:
        limits = self.limits
        now_ms = int(limits.clock() * 1000)
        latest_ms = limits._latest_ms
        requests = [
            BookingRequest(limit_class, key, limit, latest_ms(deferred_ms, now_ms))
            for limit_class, key, limit, deferred_ms in self.pending.values()
        ]
        bookings = limits.store.book_many(requests, now_ms=now_ms, window_ms=limits.window)
        self.booked_in = now_ms // limits.window
        return dict(zip(self.pending, zip(requests, bookings, strict=True), strict=True))


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

    def _class_and_limit(self, broker: dramatiq.Broker, message: Any) -> tuple[str, int]:
        limit_class = str(_context.option(broker, message, "rate_limit_class", "default"))
        return limit_class, self.limits.get(limit_class, self.limit)

    def _latest_ms(self, deferred_ms: int, now_ms: int) -> int:
        # The last moment a message deferred ``deferred_ms`` so far may be booked for.
        return now_ms + max(0, self.max_deferral - deferred_ms)

    def after_fetch(self, broker: dramatiq.Broker, messages: Sequence[Any]) -> None:
        """Book the slots of the keyed messages of a batch the Redis consumer just fetched,
        in one store call (:class:`_FetchedBatch`), before they are handed out. A message
        that holds a window already (a deferred copy) needs no booking. When the store
        cannot be reached, the batch is left for the first of it to run to book
        (``rate_limit_batch_not_booked``, a warning): the consumer fetches on."""
        requests: dict[str, _Pending] = {}
        keyed: list[Any] = []
        for message in messages:
            options = message.options
            key = options.get(KEY_OPTION)
            if key is None or options.get("rate_limit_window") is not None:
                continue
            limit_class, limit = self._class_and_limit(broker, message)
            deferred_ms = int(options.get("rate_limit_deferred_ms") or 0)
            requests[message.message_id] = (limit_class, str(key), limit, deferred_ms)
            keyed.append(message)
        if not requests:
            return
        batch = _FetchedBatch(self, requests)
        for message in keyed:
            setattr(message, FETCHED_BATCH, batch)
        try:
            batch.book()
        except Exception as exc:
            logger.warning("rate_limit_batch_not_booked", messages=len(keyed), error=repr(exc))

    def wants_before_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """False for a message without a ``rate_limit_key`` option: not limited (and
        :meth:`after_fetch` booked it no slot, so a skip has none to give back)."""
        return KEY_OPTION in shape.option_keys

    wants_after_skip_message = wants_before_process_message

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # Skipped before this middleware took its slot (paused, duplicate…): out of its
        # batch's booking, or its slot given back.
        batch: _FetchedBatch | None = getattr(message, FETCHED_BATCH, None)
        if batch is None:
            return
        setattr(message, FETCHED_BATCH, None)
        prebooked = batch.withdraw(message.message_id)
        if prebooked is not None:
            request, booking = prebooked
            if booking.window is not None:
                self.store.refund(request.limit_class, request.key, booking.window)

    def _booking(
        self, broker: dramatiq.Broker, message: Any, key: str, now_ms: int, deferred_ms: int
    ) -> tuple[str, Booking]:
        """The message's limit class and slot: the one booked with its fetched batch when
        still good, the window it holds (a deferred copy), else one booked now."""
        batch: _FetchedBatch | None = getattr(message, FETCHED_BATCH, None)
        current = now_ms // self.window
        if batch is not None:
            setattr(message, FETCHED_BATCH, None)  # used once: a skip after this refunds nothing
            prebooked = batch.take(message.message_id)
            if prebooked is not None:
                request, booking = prebooked
                window = booking.window
                # No room up to max_deferral: as booked. A slot of the window it was booked
                # in is good only while that window lasts; a slot in a later window is held
                # like a deferred copy's.
                if window is None:
                    return request.limit_class, booking
                if window > batch.booked_in or window == current:
                    delay = max(0, window * self.window - now_ms)
                    return request.limit_class, Booking(delay, window)
        reserved = message.options.get("rate_limit_window")
        if reserved is not None:
            # Its slot was booked when it was deferred: no store call.
            reserved = int(reserved)
            return self._class_and_limit(broker, message)[0], Booking(
                max(0, reserved * self.window - now_ms), reserved
            )
        limit_class, limit = self._class_and_limit(broker, message)
        booking = self.store.book(
            limit_class,
            key,
            now_ms=now_ms,
            window_ms=self.window,
            limit=limit,
            latest_ms=self._latest_ms(deferred_ms, now_ms),
        )
        return limit_class, booking

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        key = message.options.get(KEY_OPTION)
        if key is None:
            return
        options = message.options
        now_ms = int(self.clock() * 1000)
        deferred_ms = int(options.get("rate_limit_deferred_ms") or 0)
        limit_class, booking = self._booking(broker, message, str(key), now_ms, deferred_ms)
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

"""Dead letters: a message that failed for good is written, whole, to a dead-letter store.

"Failed for good" is what ``after_nack`` sees: ``Retries`` gave up (retries exhausted, or an
exception the actor ``throws``), or a middleware failed the message (``dead_letter_reason``,
e.g. a rate-limit deferral past its maximum). The record holds the whole call (message id,
queue, actor, args, kwargs, options), the error's type, text and traceback, and the number of
attempts; :mod:`gcmc_jobs.ops.dead_letters` lists, shows, replays and purges them.

Nothing is lost when the store is down: the broker has already put the nacked message in its
own dead-letter queue (Redis ``<queue>.XQ``, RabbitMQ ``<queue>.XQ``, kept 7 days by
default); this middleware logs ``dead_letter_store_failed`` at ERROR and leaves it there.
Once the store holds the record, the middleware asks the broker to forget its copy
(``forget_dead_message``, which gcmc-jobs' Redis broker has): the ``.XQ`` holds a message
only while the store could not take it, so a dead message is not counted twice (``gcmc-jobs
queues``, health) and a secret option does not stay in Redis for the broker's 7 days. A
failure to forget is logged (``dead_letter_not_forgotten``, WARNING) and harmless: the
broker expires its copy. RabbitMQ cannot remove one message from a queue, so there the
copy stays until the broker's ``dead_message_ttl``.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import Middleware, Retries

from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context, metrics
from gcmc_jobs.middleware._context import message_fields
from gcmc_jobs.middleware.selection import MessageShape
from gcmc_jobs.middleware.stores.dead_letters import DeadLetterRecord, DeadLetterStore

__all__ = ["DeadLetters", "record_for"]

logger = get_logger("gcmc_jobs.middleware.dead_letters")

#: ``error_type`` of records a middleware failed on purpose, by ``dead_letter_reason``.
REASON_ERROR_TYPES = {"rate_limit_max_deferral": "RateLimitDeferralExceeded"}


def record_for(message: Any, *, attempts: int | None = None) -> DeadLetterRecord:
    """The dead-letter record of a message that failed for good."""
    options = dict(message.options)
    reason = options.get("dead_letter_reason")
    exception: BaseException | None = getattr(message, "_exception", None)
    if reason is not None:
        error_type = REASON_ERROR_TYPES.get(str(reason), str(reason))
        error = str(exception) if exception is not None else reason
        trace = None
    elif exception is not None:
        error_type = f"{type(exception).__module__}.{type(exception).__qualname__}"
        error = str(exception)
        trace = "".join(traceback.format_exception(exception)) or options.get("traceback")
    else:
        error_type, error, trace = "Unknown", "", options.get("traceback")
    return DeadLetterRecord(
        message_id=message.message_id,
        queue=q_name(message.queue_name),
        actor=message.actor_name,
        args=list(message.args),
        kwargs=dict(message.kwargs),
        options=options,
        error_type=error_type,
        error=error,
        traceback=trace,
        attempts=attempts if attempts is not None else int(options.get("retries") or 0) + 1,
    )


class DeadLetters(Middleware):
    """Write messages that failed for good to ``store``.

    The attempts a record counts come from a failed attempt's ``retries`` option as it was
    before Retries counted the attempt: read by its ``after_process_message`` when it comes
    after ``Retries`` in the broker's list (as in the stack: its after hook then runs
    first), else by a ``before_process_message`` on every message, which a broker that
    selects hooks (:mod:`gcmc_jobs.middleware.selection`) leaves out in the stack's order.

    Parameters:
      store: a :class:`~.stores.dead_letters.DeadLetterStore` (SQL ``dead_letters`` table,
        or the in-process stub).
    """

    def __init__(self, store: DeadLetterStore) -> None:
        self.store = store
        self._local = threading.local()

    def _before_retries(self, broker: dramatiq.Broker) -> bool:
        """Whether a ``Retries`` comes after this middleware in ``broker``'s list: its
        ``after_process_message`` then runs before this one's and has counted the attempt."""
        found = False
        for middleware in broker.middleware:
            if middleware is self:
                found = True
            elif found and isinstance(middleware, Retries):
                return True
        return False

    def wants_before_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """True only when a ``Retries`` comes after this middleware (not the stack's order):
        the after hook would then read a ``retries`` option already counted."""
        return self._before_retries(broker)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # Called on every message by a broker that does not select hooks, or placed before
        # a Retries: remember the retries option before anything counts the attempt.
        self._local.attempt = (message, message.options.get("retries"))

    def wants_after_process_message(self, broker: dramatiq.Broker, shape: MessageShape) -> bool:
        """True only after a failure: the hook remembers nothing after a success."""
        return shape.failed

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        # Retries counts an attempt before giving up, except for ``throws``: remember the
        # attempt of a failed message (the ``retries`` option as it was: this hook runs
        # before Retries', the stack placing this middleware after it), worked out on its
        # nack. Only after a failure (a message succeeding is never nacked), so the broker
        # calls it for no other message (``wants_after_process_message``); a message failed
        # without an exception (a middleware's skip, ``fail()`` in the actor) was not
        # counted by Retries, and its own ``retries`` option gives its attempt.
        # When the before hook ran for this message, what it remembered stands.
        if exception is not None:
            current = getattr(self._local, "attempt", None)
            if current is None or current[0] is not message:
                self._local.attempt = (message, message.options.get("retries"))

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        current = getattr(self._local, "attempt", None)
        attempts = None
        if current is not None and current[0] is message:
            attempts = int(current[1] or 0) + 1
        self._local.attempt = None
        record = record_for(message, attempts=attempts)
        try:
            self.store.add(record)
        except Exception as exc:
            logger.error(
                "dead_letter_store_failed",
                error=f"{type(exc).__name__}: {exc}",
                kept_in=f"{q_name(message.queue_name)}.XQ",
                **message_fields(message),
            )
            return
        _context.DEAD_LETTERED.set(message.message_id)
        logger.error(
            "dead_lettered",
            error_type=record.error_type,
            reason=message.options.get("dead_letter_reason"),
            **{**message_fields(message), "attempt": record.attempts},
        )
        metrics.dead_lettered(message.actor_name)
        forget = getattr(broker, "forget_dead_message", None)
        if forget is None:
            return
        try:
            forget(message)
        except Exception as exc:
            logger.warning(
                "dead_letter_not_forgotten",
                error=f"{type(exc).__name__}: {exc}",
                kept_in=f"{q_name(message.queue_name)}.XQ",
                **message_fields(message),
            )

"""Structured logging: one structlog event per message state, with the message's context.

=====================  =====================  ===============================================
event                  when                   extra fields
=====================  =====================  ===============================================
``enqueued``           a message was written  ``delay_ms`` (None: no delay)
``enqueued_many``      a bulk enqueue wrote   ``messages`` (count), ``message_ids``,
                       a chunk                ``queues``, ``delay_ms`` (no per-message fields)
``started``            an attempt begins      (DEBUG level: see below)
``succeeded``          an attempt succeeded   ``duration_ms``
``retried``            ``Retries`` re-sent it ``attempt`` (the failed one), ``delay_ms``,
                                              ``error``
``failed``             it failed for good     ``error``, ``reason``
``dead_lettered``      (:class:`DeadLetters`) ``dead_letter_id``
``skipped_duplicate``  (:class:`Deduplication`)
``rate_limited``       (:class:`RateLimits`)  ``delay_ms``, ``limit_class``
=====================  =====================  ===============================================

Every event carries ``message_id``, ``actor``, ``queue``, ``attempt`` (1-based),
``correlation_id`` and ``tenant_id`` when the message has one. ``correlation_id`` is set at
send time: the ``correlation_id`` message option, else the sender's structlog contextvars
``correlation_id``, else a new random id (32 hex digits). While a message runs, these
fields are bound in structlog's contextvars, so the actor's own events carry them, and
messages it sends inherit its correlation id. ``started`` is logged at DEBUG, every other
event at INFO or above: at the default level a message costs one line, ``succeeded`` (or
``retried``/``failed``), which carries the same fields and ``duration_ms``; a job that hangs
shows as ``running`` in the status store and is stopped by ``TimeLimit``. Below the
configured level ``started`` costs a level check (nothing is built). Secrets are removed by
the processors :func:`gcmc_jobs.logging.redact_event` adds; this middleware never logs args
or kwargs.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import dramatiq
import structlog
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from gcmc_jobs.logging.direct import direct_writer
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context
from gcmc_jobs.middleware._context import message_fields

__all__ = ["StructuredLogging"]

logger = get_logger("gcmc_jobs.middleware.structured_logging")

#: Send-side events held per thread for messages whose write has not completed (a bulk
#: enqueue holds a chunk's); beyond this, those of failed writes are dropped.
_MAX_HELD = 10_000

#: Option marking a message enqueued with a delay, so that its move to the queue when it
#: falls due (an enqueue without delay, by the worker) is not logged as a new message.
DELAYED = "logged_delayed"


#: structlog's context variable of each field name, taken from the tokens of its first
#: ``bind_contextvars``: structlog makes one per name, once, and never replaces it.
_VARS: dict[str, contextvars.ContextVar[Any]] = {}


def _new_correlation_id() -> str:
    """A new correlation id: 32 random hex digits (the shape of a uuid4 hex, a fifth of its
    cost: a bulk enqueue makes one for each message without one)."""
    return os.urandom(16).hex()


def _bind(fields: dict[str, Any]) -> list[contextvars.Token[Any]]:
    """``structlog.contextvars.bind_contextvars(**fields)``, returning the tokens: the same
    context variables set, without building each one's name on every message."""
    tokens = []
    for name, value in fields.items():
        var = _VARS.get(name)
        if var is None:
            token = structlog.contextvars.bind_contextvars(**{name: value})[name]
            _VARS[name] = token.var
        else:
            token = var.set(value)
        tokens.append(token)
    return tokens


def _error(exception: BaseException | None) -> str | None:
    return None if exception is None else f"{type(exception).__name__}: {exception}"


class StructuredLogging(Middleware):
    """Log one event per message state (see the module docstring).

    Parameters:
      logger: the structlog logger to use (``gcmc_jobs.middleware.structured_logging``).
    """

    def __init__(self, *, logger: Any = None) -> None:
        self.logger = logger if logger is not None else globals()["logger"]
        # The package's own logger may take the direct path (gcmc_jobs.logging.direct).
        self._direct = logger is None
        self._local = threading.local()

    def _log(self, method: str, event: str, fields: dict[str, Any]) -> None:
        """Log a per-message event at ``method``'s level (``"debug"``, ``"info"``): through
        the configured processors directly when the configuration is
        ``configure_logging``'s (same line, a third cheaper; below the level, nothing is
        built), else through the logger."""
        writer = direct_writer() if self._direct else None
        if writer is not None:
            writer.write(method, event, fields)
        else:
            getattr(self.logger, method)(event, **fields)

    # -- send side ---------------------------------------------------------------------

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        options = message.options
        if delay is None and options.pop(DELAYED, None):
            return  # a delayed message falling due: it was logged when it was sent
        if delay is not None:
            options[DELAYED] = True
        if options.get("correlation_id") is None:
            bound = structlog.contextvars.get_contextvars().get("correlation_id")
            options["correlation_id"] = str(bound) if bound is not None else _new_correlation_id()
        failure: tuple[str, BaseException] | None = getattr(self._local, "failure", None)
        if failure is not None and failure[0] == message.message_id and options.get("retries"):
            self._local.failure = None
            self._defer(
                message,
                self.logger.warning,
                "retried",
                delay_ms=delay,
                error=_error(failure[1]),
                **{**message_fields(message), "attempt": int(options["retries"])},
            )
            return
        if _context.REENQUEUE.get() is not None:
            return  # the middleware re-sending it logs its own event
        self._defer(
            message, self.logger.info, "enqueued", delay_ms=delay, **message_fields(message)
        )

    def _defer(self, message: Any, log: Any, event: str, **fields: Any) -> None:
        """Hold the send-side event until ``after_enqueue``: a message the broker failed
        to write (Redis down) is never logged as sent."""
        held: dict[str, tuple[Any, str, dict[str, Any]]] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        while len(held) >= _MAX_HELD:  # events of failed writes: drop the oldest
            del held[next(iter(held))]
        held[message.message_id] = (log, event, fields)

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        held: dict[str, tuple[Any, str, dict[str, Any]]] | None = getattr(self._local, "held", None)
        entry = None if held is None else held.pop(message.message_id, None)
        if entry is not None:
            log, event, fields = entry
            log(event, **fields)

    def before_enqueue_many(
        self, broker: dramatiq.Broker, messages: Sequence[Any], delay: int | None
    ) -> None:
        """A bulk enqueue's chunk (:func:`gcmc_jobs.brokers.bulk.enqueue_many`): each message
        gets its ``correlation_id`` (and delayed mark) as in :meth:`before_enqueue`; no event
        is held per message, :meth:`after_enqueue_many` logs the chunk."""
        bound = structlog.contextvars.get_contextvars().get("correlation_id")
        for message in messages:
            options = message.options
            if delay is None:
                options.pop(DELAYED, None)
            else:
                options[DELAYED] = True
            if options.get("correlation_id") is None:
                options["correlation_id"] = (
                    str(bound) if bound is not None else _new_correlation_id()
                )

    def after_enqueue_many(
        self, broker: dramatiq.Broker, messages: Sequence[Any], delay: int | None
    ) -> None:
        """Log a bulk enqueue's written chunk as one ``enqueued_many`` event at info level
        (``messages``: the count, ``message_ids``, ``queues``, ``delay_ms``), not one
        ``enqueued`` event per message."""
        if messages:
            self.logger.info(
                "enqueued_many",
                messages=len(messages),
                message_ids=[m.message_id for m in messages],
                queues=sorted({q_name(m.queue_name) for m in messages}),
                delay_ms=delay,
            )

    # -- worker side ---------------------------------------------------------------------

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        fields = message_fields(message)
        self._local.tokens = _bind(fields)
        self._local.current = (message.message_id, fields)
        self._local.started = time.perf_counter()
        self._log("debug", "started", fields)

    def _fields(self, message: Any) -> dict[str, Any]:
        # The attempt that ran: Retries has already counted it once we see the outcome.
        current = getattr(self._local, "current", None)
        if current is not None and current[0] == message.message_id:
            return current[1]  # type: ignore[no-any-return]
        return message_fields(message)

    def _unbind(self) -> None:
        tokens = getattr(self._local, "tokens", None)
        if tokens is not None:
            for token in tokens:  # what structlog.contextvars.reset_contextvars does
                token.var.reset(token)
            self._local.tokens = None

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._unbind()
        if exception is None:
            started = getattr(self._local, "started", None) or time.perf_counter()
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            self._log("info", "succeeded", {"duration_ms": duration_ms, **self._fields(message)})
        else:
            # Retries (earlier in the stack) runs after this hook: if it re-sends the
            # message, before_enqueue logs "retried"; if it gives up, after_nack logs "failed".
            self._local.failure = (message.message_id, exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._unbind()

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._unbind()
        self._local.failure = None
        exception = getattr(message, "_exception", None)
        self.logger.error(
            "failed",
            error=_error(exception),
            reason=message.options.get("dead_letter_reason"),
            **self._fields(message),
        )

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._local.failure = None

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
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import dramatiq
import structlog
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from gcmc_jobs.logging.direct import (
    HOLE,
    MILLISECONDS,
    DirectWriter,
    LineTemplate,
    direct_writer,
)
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


#: The fields bound while a message runs (:func:`message_fields`' keys, in its order).
_NAMES = ("message_id", "actor", "queue", "attempt", "correlation_id", "tenant_id")

#: Routes (actor, queue) kept per middleware; beyond this, each message makes its own.
_MAX_ROUTES = 10_000


def _new_correlation_id() -> str:
    """A new correlation id: 32 random hex digits (the shape of a uuid4 hex, a fifth of its
    cost: a bulk enqueue makes one for each message without one)."""
    return os.urandom(16).hex()


def _context_vars() -> tuple[contextvars.ContextVar[Any], ...]:
    """structlog's context variable of each of :data:`_NAMES`, taken from the tokens of a
    ``bind_contextvars`` reset at once: structlog makes one per name, once, and never
    replaces it, so setting it is what ``bind_contextvars`` does, without building the
    variable's name on every message."""
    tokens = structlog.contextvars.bind_contextvars(**dict.fromkeys(_NAMES))
    for token in tokens.values():
        token.var.reset(token)
    return tuple(tokens[name].var for name in _NAMES)


class _Templates:
    """The templates of a route's ``started`` and ``succeeded`` lines (with and without a
    ``tenant_id``) for one writer (:meth:`gcmc_jobs.logging.direct.DirectWriter.template`);
    ``None``: that line takes the general path."""

    __slots__ = ("started", "started_tenant", "succeeded", "succeeded_tenant", "writer")

    def __init__(self, writer: DirectWriter | None, actor: str = "", queue: str = "") -> None:
        self.writer = writer
        self.started = self.started_tenant = self.succeeded = self.succeeded_tenant = None
        if writer is not None:
            self.started = _template(writer, "started", actor, queue, tenant=False)
            self.started_tenant = _template(writer, "started", actor, queue, tenant=True)
            self.succeeded = _template(writer, "succeeded", actor, queue, tenant=False)
            self.succeeded_tenant = _template(writer, "succeeded", actor, queue, tenant=True)


def _template(
    writer: DirectWriter, event: str, actor: str, queue: str, *, tenant: bool
) -> LineTemplate | None:
    fields: dict[str, Any] = {"duration_ms": MILLISECONDS} if event == "succeeded" else {}
    fields.update(message_id=HOLE, actor=actor, queue=queue, attempt=HOLE, correlation_id=HOLE)
    if tenant:
        fields["tenant_id"] = HOLE
    return writer.template("debug" if event == "started" else "info", event, fields)


class _Route:
    """The constant fields of an actor's messages on one queue, and the templates of their
    lines for the writer in force."""

    __slots__ = ("actor", "queue", "templates")

    def __init__(self, actor: str, queue: str) -> None:
        self.actor = actor
        self.queue = queue
        # Replaced whole (one assignment): threads never pair a writer with another's.
        self.templates = _Templates(None)

    def templates_for(self, writer: DirectWriter) -> _Templates:
        """The templates of ``writer`` (made when the writer in force changes)."""
        templates = self.templates
        if templates.writer is not writer:
            templates = self.templates = _Templates(writer, self.actor, self.queue)
        return templates


class _Running:
    """What a worker thread holds of the message it runs: the tokens of its bound fields,
    the fields' values, when it started and how it failed."""

    __slots__ = ("failure", "message_id", "route", "started", "tokens", "values")

    def __init__(self) -> None:
        self.tokens: tuple[contextvars.Token[Any], ...] | None = None
        self.message_id: Any = None
        self.route: _Route | None = None
        # The values of a template's holes after duration_ms: the message id, attempt,
        # correlation id and, when there is one, tenant id (4 values: a tenant's templates).
        self.values: tuple[Any, ...] = ()
        self.started: float | None = None
        # (message id, exception) of the message that raised, until Retries re-sends it
        # ("retried"), it is nacked ("failed") or the thread's next message starts.
        self.failure: tuple[str, BaseException] | None = None

    def unbind(self) -> None:
        """Reset the message's bound fields (what structlog's ``reset_contextvars`` does
        with the tokens), once."""
        tokens = self.tokens
        if tokens is not None:
            for token in tokens:
                token.var.reset(token)
            self.tokens = None

    def fields(self) -> dict[str, Any]:
        """The message's fields, as :func:`message_fields` made them when it started."""
        route = self.route
        assert route is not None
        message_id, attempt, correlation_id, *tenant_id = self.values
        fields = {
            "message_id": message_id,
            "actor": route.actor,
            "queue": route.queue,
            "attempt": attempt,
            "correlation_id": correlation_id,
        }
        if tenant_id:
            fields["tenant_id"] = tenant_id[0]
        return fields


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
        self._vars = _context_vars()
        self._routes: dict[tuple[str, str], _Route] = {}

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
        running: _Running | None = getattr(self._local, "running", None)
        failure = None if running is None else running.failure
        if (
            running is not None
            and failure is not None
            and failure[0] == message.message_id
            and options.get("retries")
        ):
            running.failure = None
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
        try:
            running: _Running = self._local.running
        except AttributeError:
            running = self._local.running = _Running()
        route = self._routes.get((message.actor_name, message.queue_name))
        if route is None:
            route = self._route(message)
        # message_fields(message), without its dict: bound, then written by the templates.
        options = message.options
        message_id = message.message_id
        attempt = int(options.get("retries") or 0) + 1
        correlation_id = options.get("correlation_id")
        if correlation_id is None:
            correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
        tenant_id = options.get("tenant_id")
        if tenant_id is None:
            tenant_id = message.kwargs.get("tenant_id")
        # bind_contextvars(**fields), keeping the tokens to reset them when it ends.
        names = self._vars
        tokens: tuple[contextvars.Token[Any], ...] = (
            names[0].set(message_id),
            names[1].set(route.actor),
            names[2].set(route.queue),
            names[3].set(attempt),
            names[4].set(correlation_id),
        )
        if tenant_id is None:
            running.values = (message_id, attempt, correlation_id)
        else:
            tokens += (names[5].set(tenant_id),)
            running.values = (message_id, attempt, correlation_id, tenant_id)
        running.tokens = tokens
        running.message_id = message_id
        running.route = route
        running.failure = None  # an earlier message's, neither re-sent nor nacked
        running.started = time.perf_counter()
        writer = direct_writer() if self._direct else None
        if writer is None:
            self.logger.debug("started", **running.fields())
        elif writer.level <= logging.DEBUG:  # else nothing is built
            templates = route.templates_for(writer)
            template = templates.started if tenant_id is None else templates.started_tenant
            if template is None or not template.write(running.values):
                writer.write("debug", "started", running.fields())

    def _route(self, message: Any) -> _Route:
        route = _Route(message.actor_name, q_name(message.queue_name))
        if len(self._routes) < _MAX_ROUTES:
            self._routes[(message.actor_name, message.queue_name)] = route
        return route

    def _fields(self, message: Any) -> dict[str, Any]:
        # The attempt that ran: Retries has already counted it once we see the outcome.
        running: _Running | None = getattr(self._local, "running", None)
        if (
            running is not None
            and running.route is not None
            and running.message_id == message.message_id
        ):
            return running.fields()
        return message_fields(message)

    def _unbind(self) -> None:
        running: _Running | None = getattr(self._local, "running", None)
        if running is not None:
            running.unbind()
            running.failure = None

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        try:
            running: _Running = self._local.running
        except AttributeError:
            running = self._local.running = _Running()
        running.unbind()
        if exception is not None:
            # Retries (earlier in the stack) runs after this hook: if it re-sends the
            # message, before_enqueue logs "retried"; if it gives up, after_nack logs "failed".
            running.failure = (message.message_id, exception)
            return
        started = running.started or time.perf_counter()
        milliseconds = (time.perf_counter() - started) * 1000  # written rounded to 3 digits
        writer = direct_writer() if self._direct else None
        if writer is None:
            fields = {"duration_ms": round(milliseconds, 3), **self._fields(message)}
            self.logger.info("succeeded", **fields)
            return
        route = running.route
        if route is not None and running.message_id == message.message_id:
            templates = route.templates_for(writer)
            values = running.values
            template = templates.succeeded if len(values) == 3 else templates.succeeded_tenant
            if template is not None and template.write(values, milliseconds):
                return
        fields = {"duration_ms": round(milliseconds, 3), **self._fields(message)}
        writer.write("info", "succeeded", fields)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._unbind()

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._unbind()
        exception = getattr(message, "_exception", None)
        self.logger.error(
            "failed",
            error=_error(exception),
            reason=message.options.get("dead_letter_reason"),
            **self._fields(message),
        )

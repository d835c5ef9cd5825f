"""The transactional outbox: a host writes a message in its own database transaction, and
it is sent if and only if that transaction commits.

::

    from gcmc_jobs import outbox
    from gcmc_jobs.actors import refresh_compliance

    with Session(engine) as session, session.begin():
        document.status = "approved"
        outbox.send(session, refresh_compliance, tenant_id=42)
    # committed: the relay enqueues it; rolled back: nothing is ever sent

:func:`send` and :func:`send_with_options` mirror ``actor.send`` and
``actor.send_with_options``: the message is built and validated in the caller, as ``send``
does (a bad email payload raises :class:`~gcmc_jobs.errors.InvalidPayload` here), its
``dedup_key`` template is resolved here (a missing argument raises
:class:`~gcmc_jobs.errors.KeyTemplateError`), and the sender's ``correlation_id`` is kept.
Writing it is one ``INSERT`` into ``outbox_messages`` on the host's ``Session`` or
``Connection``: it touches neither the broker nor Redis, so it works while they are down.

The relay (:class:`gcmc_jobs.middleware.OutboxRelay`: in every worker process, or ``gcmc-jobs
outbox relay``) moves committed rows to the broker in batches. A message whose dedup key
another message holds is dropped there (logged ``skipped_duplicate``), since the host's
transaction has already committed.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from dramatiq.common import current_millis
from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.middleware._context import resolve_key

__all__ = ["enqueue", "send", "send_with_options"]


def send(
    connection: Session | Connection, actor: dramatiq.Actor[Any, Any], *args: Any, **kwargs: Any
) -> dramatiq.Message[Any]:
    """Write ``actor.send(*args, **kwargs)`` into the outbox in ``connection``'s transaction;
    returns the message (its ``message_id`` is final)."""
    return send_with_options(connection, actor, args=args, kwargs=kwargs)


def send_with_options(
    connection: Session | Connection,
    actor: dramatiq.Actor[Any, Any],
    *,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    delay: int | None = None,
    **options: Any,
) -> dramatiq.Message[Any]:
    """Write ``actor.send_with_options(...)`` into the outbox in ``connection``'s transaction.

    ``delay`` (ms) counts from this call: the relay enqueues the message with what is left
    of it. ``options`` are message options, as for ``send_with_options`` (``dedup_key``,
    ``correlation_id``, ...).
    """
    message = actor.message_with_options(args=args, kwargs=kwargs or {}, **options)
    key = resolve_key(actor.broker, message, "dedup_key")
    if key is not None:
        message.options["dedup_key"] = key
    return enqueue(connection, message, delay=delay)


def enqueue(
    connection: Session | Connection, message: dramatiq.Message[Any], *, delay: int | None = None
) -> dramatiq.Message[Any]:
    """Write a message already built (``actor.message(...)``) into the outbox in
    ``connection``'s transaction; ``delay`` in ms from now. Nothing is validated or resolved
    beyond what building the message did."""
    if delay is not None and delay < 0:
        raise ValueError("delay must be >= 0 ms")
    if "correlation_id" not in message.options:
        correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
        if correlation_id is not None:
            message.options["correlation_id"] = correlation_id
    body = message.encode().decode()  # TypeError here for arguments JSON cannot hold
    connection.execute(
        insert(tables_of(connection).outbox_messages).values(
            message_id=message.message_id,
            queue_name=message.queue_name,
            actor_name=message.actor_name,
            body=body,
            not_before_ms=None if not delay else current_millis() + delay,
        )
    )
    return message

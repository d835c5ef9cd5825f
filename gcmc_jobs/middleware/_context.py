"""Helpers the middleware share: resolving options and the fields every log event carries."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.common import q_name

from gcmc_jobs.errors import KeyTemplateError

__all__ = ["DEAD_LETTERED", "REENQUEUE", "message_fields", "option", "resolve_key"]


def option(broker: dramatiq.Broker, message: Any, name: str, default: Any = None) -> Any:
    """``name`` from the message's options, else its actor's options, else ``default``."""
    value = message.options.get(name)
    if value is not None:
        return value
    # One dict lookup, as the stack's default middleware read the actor: the worker reads
    # some options here for every message (rate_limit_class, dedup_ttl), and get_actor()
    # adds a method call and a try/except around the same lookup.
    actor = broker.actors.get(message.actor_name)
    if actor is None:
        return default
    value = actor.options.get(name)
    return default if value is None else value


def resolve_key(broker: dramatiq.Broker, message: Any, name: str) -> str | None:
    """The message's key option ``name``: a message option is used as is; an actor option is
    a ``str.format`` template over the kwargs or a callable(message) -> str | None."""
    value = message.options.get(name)
    if value is not None:
        return str(value)
    try:
        actor = broker.get_actor(message.actor_name)
    except dramatiq.errors.ActorNotFound:
        return None
    spec: str | Callable[[Any], str | None] | None = actor.options.get(name)
    if spec is None:
        return None
    if callable(spec):
        try:
            key = spec(message)
        except Exception as exc:  # a hook may only stop a send with a MiddlewareError
            raise KeyTemplateError(
                f"{name} function of actor {message.actor_name!r} failed: {exc!r}"
            ) from exc
        return None if key is None else str(key)
    try:
        return spec.format(**message.kwargs)
    except (KeyError, IndexError) as exc:
        raise KeyTemplateError(
            f"{name} template {spec!r} of actor {message.actor_name!r} needs argument {exc}"
        ) from exc


def message_fields(message: Any) -> dict[str, Any]:
    """message_id, actor, queue, attempt, correlation_id and tenant_id (when known)."""
    options = message.options
    fields: dict[str, Any] = {
        "message_id": message.message_id,
        "actor": message.actor_name,
        "queue": q_name(message.queue_name),
        "attempt": int(options.get("retries") or 0) + 1,
    }
    correlation_id = options.get("correlation_id")
    if correlation_id is None:
        correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
    fields["correlation_id"] = correlation_id
    tenant_id = options.get("tenant_id")
    if tenant_id is None:
        tenant_id = message.kwargs.get("tenant_id")
    if tenant_id is not None:
        fields["tenant_id"] = tenant_id
    return fields


#: Why a middleware is re-enqueueing the message it is handling (``"rate_limited"``), so
#: :class:`~gcmc_jobs.middleware.structured_logging.StructuredLogging` does not log it as a
#: new ``enqueued`` message.
REENQUEUE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gcmc_jobs_reenqueue", default=None
)

#: The id of the message :class:`~gcmc_jobs.middleware.DeadLetters` last stored (set in its
#: ``after_nack``), so :class:`~gcmc_jobs.middleware.status_tracking.StatusTracking`, whose
#: ``after_nack`` runs after it, records ``dead_lettered`` rather than ``failed``.
DEAD_LETTERED: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gcmc_jobs_dead_lettered", default=None
)

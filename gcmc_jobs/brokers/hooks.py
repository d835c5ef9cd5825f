"""Which middleware implement which hook: the one filter the broker and bulk enqueue share.

Dramatiq's ``Broker.emit_before``/``emit_after`` look up and call a hook on *every*
middleware, although most inherit :class:`~dramatiq.Middleware`'s empty default: with the
15 of gcmc-jobs' stack, a message's four per-message signals cost 60 calls, about half of
them no-ops. :func:`implementing` lists the bound hooks that do something, once, for
:class:`~gcmc_jobs.brokers.redis_broker.RedisBroker` (cached per signal) and
:func:`~gcmc_jobs.brokers.bulk.enqueue_many` (per call).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dramatiq import Middleware

__all__ = ["implementing"]


def implementing(middleware: Iterable[Middleware], hook: str) -> tuple[Any, ...]:
    """The bound ``hook`` (``"before_enqueue"``, ``"after_ack"``, …) of each middleware that
    implements it, in stack order: its class overrides :class:`~dramatiq.Middleware`'s
    default, or the hook was assigned on the instance."""
    default = getattr(Middleware, hook, None)
    return tuple(
        getattr(m, hook)
        for m in middleware
        if hook in vars(m) or getattr(type(m), hook, None) is not default
    )

"""How gcmc-jobs' brokers call the middleware's hooks: only those that implement a signal,
and of the per-message ones only those that can act on the message's shape.

Dramatiq's ``Broker.emit_before``/``emit_after`` look up and call a hook on *every*
middleware, although most inherit :class:`~dramatiq.Middleware`'s empty default: with the
15 of gcmc-jobs' stack, a message's four per-message signals cost 60 calls, about half of
them no-ops. :func:`implementing` lists the bound hooks that do something, once, for
:class:`SelectingEmitter` (cached per signal) and :func:`~gcmc_jobs.brokers.bulk.enqueue_many`
(per call).

Of the remaining ~29 calls a no-op message, about half return at once for most messages
(``Callbacks`` without ``on_success``, ``Deduplication`` without a dedup key, ``MailCircuit``
off the email queues...). :class:`SelectingEmitter` asks those middleware once per shape of
message (:mod:`gcmc_jobs.middleware.selection`: its actor, queue and option keys, and for
``after_process_message`` whether it failed) which of these hooks can act, and calls only
those.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq
from dramatiq import Middleware
from dramatiq.middleware import MiddlewareError

from gcmc_jobs.middleware.selection import MESSAGE_HOOKS, MessageShape, wants

__all__ = ["SelectingEmitter", "implementing"]


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


class _MiddlewareList(list[Middleware]):
    """A broker's ``middleware`` list that calls ``changed`` after every change to it
    (``add_middleware`` appends or inserts; tests edit it directly), so the broker's hook
    tuples are rebuilt only then, not compared with the list on every emit."""

    def __init__(self, middleware: Iterable[Middleware], changed: Callable[[], None]) -> None:
        super().__init__(middleware)
        self._changed = changed


def _announcing(name: str) -> Callable[..., Any]:
    change = getattr(list, name)

    def method(self: _MiddlewareList, *args: Any, **kwargs: Any) -> Any:
        try:
            return change(self, *args, **kwargs)
        finally:
            self._changed()

    method.__name__ = method.__qualname__ = name
    return method


for _name in (
    "__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert",
    "remove", "pop", "clear", "sort", "reverse",
):  # fmt: skip
    setattr(_MiddlewareList, _name, _announcing(_name))


class _Selection(dict[tuple[str, str, tuple[str, ...]], tuple[Any, ...]]):
    """The hooks of one per-message signal for each shape of message met so far, keyed by
    ``(actor name, queue name, tuple of option keys)``: a shape not met yet is decided on
    first sight (``__missing__``: each hook's ``wants_<hook>``), then read as a dict item."""

    __slots__ = ("broker", "failed", "hooks", "name")

    def __init__(self, broker: Any, name: str, hooks: tuple[Any, ...], *, failed: bool) -> None:
        super().__init__()
        self.broker = broker
        self.name = name
        self.hooks = hooks  # every implementing hook, in calling order
        self.failed = failed

    def __missing__(self, key: tuple[str, str, tuple[str, ...]]) -> tuple[Any, ...]:
        actor_name, queue_name, option_keys = key
        broker = self.broker
        shape = MessageShape(
            actor_name,
            broker.actors.get(actor_name),
            queue_name,
            frozenset(option_keys),
            self.failed,
        )
        selected = tuple(hook for hook in self.hooks if wants(hook, self.name, broker, shape))
        self[key] = selected
        return selected

    def of(self, message: Any) -> tuple[Any, ...]:
        """The hooks to call for ``message``, in calling order."""
        return self[message.actor_name, message.queue_name, tuple(message.options)]


class SelectingEmitter(dramatiq.Broker):
    """The hook emitting of gcmc-jobs' brokers (mixed in ahead of Dramatiq's broker class):
    each signal calls only the middleware that implement its hook, and a per-message signal
    only those whose hook can act on the message's shape.

    **Per signal.** Dramatiq's ``emit_before``/``emit_after`` call the hook on *every*
    middleware. Here the bound hooks that do something (:func:`implementing`, the filter
    bulk enqueue uses too) are listed once per signal in a dict an emit reads directly.

    **Per message shape.** For the per-message hooks
    (:data:`~gcmc_jobs.middleware.selection.MESSAGE_HOOKS`: ``before_process_message``,
    ``after_process_message`` on success and on failure separately, ``after_skip_message``,
    ``before/after_ack``, ``before/after_nack``), when some middleware implementing the hook
    defines a ``wants_<hook>`` predicate, the hooks are selected once per
    ``(actor name, queue name, option keys)`` (and outcome) and cached: the key costs a
    tuple of the option keys a message, ~0.36 µs an emit in a tight loop against ~2.6 µs
    for the 13 calls it leaves out of a plain no-op message (the protocol:
    :mod:`gcmc_jobs.middleware.selection`). Keys in another order, or added by a retry or a
    deferral, are other entries: a handful per actor. A middleware without a predicate is
    always called, as before.

    **Forgotten** (decided again on the next emit) whenever ``self.middleware`` changes: it
    is a list that says so (``add_middleware``, such as the worker's own middleware
    ``Worker.start`` adds, and direct edits of the list are seen; assigning a new list makes
    the broker a copy of it, whose later changes are seen, not the assigned list's); when an
    actor is declared or re-declared (:meth:`declare_actor`); when a middleware attribute
    declared a :class:`~gcmc_jobs.middleware.selection.SelectionInput` is assigned; and by
    :meth:`forget_hooks`. **Not seen:** a hook assigned on a middleware *instance* after its
    signal was first emitted (nothing does that), ``actor.options`` edited in place, and
    another attribute a predicate reads assigned after messages ran (call
    :meth:`forget_hooks` then).

    Exceptions are handled exactly as Dramatiq does (a ``MiddlewareError`` from a
    ``before_*`` hook propagates; anything else is logged and the next hook runs), and the
    ``after_*`` hooks run in reverse stack order.
    """

    # The middleware list and the hooks of each signal (see the class docstring).
    @property
    def middleware(self) -> list[Middleware]:
        return self._middleware

    @middleware.setter
    def middleware(self, middleware: list[Middleware]) -> None:
        # Dramatiq's Broker.__init__ assigns it first, before any signal is emitted.
        if "_hook_lock" not in self.__dict__:
            self._hook_lock = threading.Lock()
            self._before_hooks: dict[str, tuple[Any, ...] | _Selection] = {}
            self._after_hooks: dict[str, tuple[Any, ...] | _Selection] = {}
            self._failed_hooks: dict[str, tuple[Any, ...] | _Selection] = {}
        self._middleware = _MiddlewareList(middleware, self.forget_hooks)
        self.forget_hooks()

    def forget_hooks(self) -> None:
        """Forget the hooks of every signal and every shape of message: they are listed and
        selected again on the next emit. Called on every change the class docstring lists;
        call it after changing anything else a ``wants_<hook>`` predicate reads."""
        # Under the lock, after the change: a _cache_hooks that read the list before the
        # change stored its entry before this clears it.
        with self._hook_lock:
            self._before_hooks.clear()
            self._after_hooks.clear()
            self._failed_hooks.clear()

    def declare_actor(self, actor: dramatiq.Actor[Any, Any]) -> None:
        """Dramatiq's ``declare_actor``; the hook selection is forgotten once the actor is
        in ``self.actors`` (its options may select other hooks than its predecessor's)."""
        try:
            super().declare_actor(actor)
        finally:
            self.forget_hooks()

    def _hooks(self, name: str) -> tuple[Any, ...]:
        """The bound hooks ``name`` of the middleware that implement it, in stack order: the
        one place the emits get them (``benchmarks/_hook_timer.py`` wraps it)."""
        return implementing(self._middleware, name)

    def _cache_hooks(
        self, table: dict[str, tuple[Any, ...] | _Selection], signal: str, *, failed: bool
    ) -> tuple[Any, ...] | _Selection:
        after = table is not self._before_hooks
        name = ("after_" if after else "before_") + signal
        with self._hook_lock:
            hooks = self._hooks(name)
            if after:
                hooks = hooks[::-1]  # emit_after calls them in reverse stack order
            cached: tuple[Any, ...] | _Selection = hooks
            if name in MESSAGE_HOOKS and any(
                hasattr(getattr(hook, "__self__", None), "wants_" + name) for hook in hooks
            ):
                cached = _Selection(self, name, hooks, failed=failed)
            table[signal] = cached
            return cached

    def _select(
        self,
        table: dict[str, tuple[Any, ...] | _Selection],
        signal: str,
        message: Any = None,
        *,
        failed: bool = False,
    ) -> tuple[Any, ...]:
        """The hooks of ``signal`` in ``table`` (``_before_hooks``, ``_after_hooks`` or,
        after a failed message, ``_failed_hooks``) to call, listed on first use: for
        ``message``, those selected for its shape; without one, all of them."""
        hooks = table.get(signal)
        if hooks is None:
            hooks = self._cache_hooks(table, signal, failed=failed)
        if isinstance(hooks, _Selection):
            return hooks.hooks if message is None else hooks.of(message)
        return hooks

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs:
            # The per-message signals (process_message, ack, nack, ...): a plain call with
            # one argument, not a call with *args/**kwargs (a third of the cost).
            (arg,) = args
            for hook in self._select(self._before_hooks, signal, arg):
                try:
                    hook(self, arg)
                except MiddlewareError:
                    raise
                except Exception:
                    self._hook_failed("before_" + signal, hook)
            return
        for hook in self._select(self._before_hooks, signal):
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self._hook_failed("before_" + signal, hook)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1:
            (arg,) = args
            if not kwargs:  # ack, nack, skip_message, ...
                for hook in self._select(self._after_hooks, signal, arg):
                    try:
                        hook(self, arg)
                    except Exception:
                        self._hook_failed("after_" + signal, hook)
                return
            if len(kwargs) == 1 and "result" in kwargs:  # process_message, succeeded
                result = kwargs["result"]
                for hook in self._select(self._after_hooks, signal, arg):
                    try:
                        hook(self, arg, result=result)
                    except Exception:
                        self._hook_failed("after_" + signal, hook)
                return
            if len(kwargs) == 1 and "exception" in kwargs:  # process_message, failed
                exception = kwargs["exception"]
                for hook in self._select(self._failed_hooks, signal, arg, failed=True):
                    try:
                        hook(self, arg, exception=exception)
                    except Exception:
                        self._hook_failed("after_" + signal, hook)
                return
        for hook in self._select(self._after_hooks, signal):
            try:
                hook(self, *args, **kwargs)
            except Exception:
                self._hook_failed("after_" + signal, hook)

    def _hook_failed(self, name: str, hook: Any) -> None:
        # Inside the except clause of the failed hook: exc_info is that exception.
        self.logger.critical(
            "Unexpected failure in %s of %r.", name, getattr(hook, "__self__", hook), exc_info=True
        )

"""The protocol by which a middleware tells the broker which messages a hook can act on.

Most of the stack's per-message hooks return at once for most messages: ``Callbacks`` after
a message without ``on_success``, ``Deduplication`` for one without a dedup key,
``MailCircuit`` off the email queues... Each such call still costs 1-2 µs in a worker.
gcmc-jobs' brokers (:class:`~gcmc_jobs.brokers.hooks.SelectingEmitter`) therefore ask each
middleware, once per *shape* of message (:class:`MessageShape`: its actor, its queue, the
keys of its options and, after it ran, whether it failed), which of its per-message hooks
(:data:`MESSAGE_HOOKS`) can do anything, and call only those for messages of that shape.

**The protocol.** Next to a hook ``H`` in :data:`MESSAGE_HOOKS`, a middleware may define::

    def wants_H(self, broker: dramatiq.Broker, shape: MessageShape) -> bool: ...

False promises that ``H`` does nothing for *any* message of that shape (the hook's own code
would return without an effect), so the broker may leave it out; True (or no ``wants_H`` at
all: third-party and user middleware, Dramatiq's and periodiq's own classes) means it is
called, exactly as before. The predicate must read the same inputs the hook reads, through
the same helper where the hook needs a lookup: only what the shape holds (option *keys*, not
their values; the actor's options; the queue), and the middleware's attributes.

**What is decided once and what is not seen.** The answer is cached per shape until the
broker forgets it: when its middleware list changes, when an actor is declared or
re-declared, and when a middleware attribute declared a :class:`SelectionInput` is assigned
(``AgeLimit.max_age``, ``MailCircuit.enabled``...). Not seen: ``actor.options`` edited in
place, and any other attribute a predicate reads assigned after messages ran. The keys are
those of the message's options when the signal is emitted: an option a hook of the same
emit adds is not seen by the predicates of the hooks after it (no hook of the stack adds
one another's predicate reads).
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    import dramatiq

__all__ = ["MESSAGE_HOOKS", "MessageShape", "SelectionInput", "wants", "watch"]

T = TypeVar("T")

#: The hooks a ``wants_<hook>`` predicate may select: those a broker emits with one message
#: (``after_process_message`` with ``result=`` or ``exception=``). A ``wants_`` method for
#: any other hook is ignored: the hook is always called.
MESSAGE_HOOKS = frozenset(
    {
        "before_process_message",
        "after_process_message",
        "after_skip_message",
        "before_ack",
        "after_ack",
        "before_nack",
        "after_nack",
    }
)

# The brokers whose selection consulted a middleware (a WeakSet in the middleware's
# __dict__): what assigning one of its SelectionInputs tells to forget.
_WATCHERS = "_gcmc_selection_watchers"
# Held while a WeakSet of watchers is created, added to or copied: a worker thread meeting
# a new shape adds a broker while another thread's assignment copies the set (iterating a
# WeakSet that grows raises "Set changed size during iteration"), and two threads adding
# the first watchers of a middleware would each create a set, one of them lost. Neither
# is on the per-message path: a watch is a shape's first sight, a copy an assignment.
_WATCHERS_LOCK = threading.Lock()


class MessageShape(NamedTuple):
    """What a hook selection depends on: the messages of one shape get the same hooks."""

    #: The message's actor name.
    actor_name: str
    #: The actor declared under that name on the broker; None when none is (a predicate
    #: then answers True: the hook raises or logs what it always did).
    actor: dramatiq.Actor[Any, Any] | None
    #: The message's queue.
    queue_name: str
    #: The keys of the message's options (not their values).
    option_keys: frozenset[str]
    #: ``after_process_message`` only: True when the message failed (``exception=``),
    #: False when it succeeded (``result=``); False for every other hook.
    failed: bool


class SelectionInput(Generic[T]):
    """A middleware attribute a ``wants_<hook>`` predicate reads (declare it in the class
    body, ``max_age = SelectionInput[int | None]()``): assigning it on an instance makes each
    broker whose selection consulted that instance forget its selection, so the next
    messages are decided with the new value. Reading it costs what reading a plain instance
    attribute costs: the value lives in the instance's ``__dict__`` and this descriptor
    defines no ``__get__`` (a data descriptor without one yields to the instance dict)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    if TYPE_CHECKING:

        def __get__(self, middleware: object, owner: type | None = None) -> T: ...

    def __set__(self, middleware: object, value: T) -> None:
        attributes = middleware.__dict__
        attributes[self.name] = value
        with _WATCHERS_LOCK:
            brokers = list(attributes.get(_WATCHERS, ()))
        for broker in brokers:
            broker.forget_hooks()


def watch(middleware: object, broker: Any) -> None:
    """Note that ``broker`` (which has a ``forget_hooks()`` method) selected hooks with
    ``middleware``'s predicates: assigning one of its :class:`SelectionInput` attributes
    will call it. Held weakly."""
    with _WATCHERS_LOCK:
        watchers = middleware.__dict__.get(_WATCHERS)
        if watchers is None:
            watchers = middleware.__dict__[_WATCHERS] = weakref.WeakSet()
        watchers.add(broker)


def wants(hook: Any, name: str, broker: Any, shape: MessageShape) -> bool:
    """Whether the bound ``hook`` (named ``name``) must be called for messages of ``shape``:
    its middleware's ``wants_<name>`` answer, True when it has none, when ``name`` is not in
    :data:`MESSAGE_HOOKS`, or when ``hook`` is not a bound method (assigned on an instance)."""
    middleware = getattr(hook, "__self__", None)
    predicate = getattr(middleware, "wants_" + name, None)
    if predicate is None or name not in MESSAGE_HOOKS:
        return True
    watch(middleware, broker)
    return bool(predicate(broker, shape))

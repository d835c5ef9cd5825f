"""Dramatiq's default middleware that the stack keeps, with cheaper per-message hooks.

Each class here subclasses Dramatiq's class of the same name (so ``isinstance`` checks,
``broker.middleware`` lookups and ``actor_options`` are unchanged) and overrides only the
per-message hooks, which do what Dramatiq's do, in fewer steps (issue 17, worker CPU per
message):

- the actor is read from ``broker.actors`` (a dict) instead of through ``get_actor`` (a
  method with a ``try``); a message whose actor is not declared goes to Dramatiq's hook,
  which raises ``ActorNotFound`` as before;
- options are read as Dramatiq reads them (message option, else actor option, else the
  middleware's attribute, with the same ``or``/``None`` tests), each message the hook runs
  for;
- a ``wants_<hook>`` predicate next to a hook that does nothing for most actors
  (``AgeLimit``, ``ShutdownNotifications``, ``Callbacks``, and ``Retries`` and
  ``PeriodiqMiddleware``, subclassed here for that alone) lets gcmc-jobs' brokers leave it
  out for the shapes of message it cannot act on (:mod:`gcmc_jobs.middleware.selection`).
  That answer is cached per actor, queue and option keys: a re-declared actor, an added
  middleware and an assigned ``AgeLimit.max_age`` or
  ``ShutdownNotifications.notify_shutdown`` count at once; an ``actor.options`` edited in
  place after messages ran does not (call the broker's ``forget_hooks()``);
- ``TimeLimit`` writes a thread's deadline without the manager's lock once the thread has
  its entry (see :class:`TimeLimit`), ``ShutdownNotifications`` touches its set only when
  it must, and its after hooks are left out until a thread was first notified (see
  :class:`ShutdownNotifications`);
- under gevent (other managers) both call Dramatiq's hooks.

``Retries`` (its ``after_process_message`` returns at once without an exception) and
periodiq's ``PeriodiqMiddleware`` (one dict lookup and one ``in``) keep their hooks; they
gain only a predicate.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any

from dramatiq import Actor, Broker
from dramatiq.common import current_millis
from dramatiq.middleware import AgeLimit as _AgeLimit
from dramatiq.middleware import Callbacks as _Callbacks
from dramatiq.middleware import CurrentMessage as _CurrentMessage
from dramatiq.middleware import Retries as _Retries
from dramatiq.middleware import ShutdownNotifications as _ShutdownNotifications
from dramatiq.middleware import SkipMessage
from dramatiq.middleware import TimeLimit as _TimeLimit
from dramatiq.middleware.shutdown import _CtypesShutdownManager
from dramatiq.middleware.time_limit import _CtypesTimeoutManager
from periodiq import PeriodiqMiddleware as _PeriodiqMiddleware

from gcmc_jobs.middleware.selection import MessageShape, SelectionInput

__all__ = [
    "AgeLimit",
    "Callbacks",
    "CurrentMessage",
    "PeriodiqMiddleware",
    "Retries",
    "ShutdownNotifications",
    "TimeLimit",
]

_get_ident = threading.get_ident


class AgeLimit(_AgeLimit):
    """Dramatiq's ``AgeLimit``: a message older than its ``max_age`` (ms; message option,
    else actor option, else ``max_age``; None or 0: no limit) is failed and skipped.

    Its hook is left out for messages without a ``max_age`` option whose actor has no limit
    (:meth:`wants_before_process_message`); assigning ``max_age`` is seen at once."""

    max_age = SelectionInput[int | None]()

    def _actor_max_age(self, actor: Actor[Any, Any]) -> int | None:
        """The limit of ``actor``'s messages without a ``max_age`` option, ms."""
        max_age: int | None = actor.options.get("max_age", self.max_age)
        return max_age

    def wants_before_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """False for a message without a ``max_age`` option whose actor has no limit."""
        return (
            shape.actor is None
            or "max_age" in shape.option_keys
            or bool(self._actor_max_age(shape.actor))
        )

    def before_process_message(self, broker: Broker, message: Any) -> None:
        actor = broker.actors.get(message.actor_name)
        if actor is None:
            super().before_process_message(broker, message)  # type: ignore[no-untyped-call]
            return
        max_age = message.options.get("max_age") or self._actor_max_age(actor)
        if max_age and current_millis() - message.message_timestamp >= max_age:
            self.logger.warning("Message %r has exceeded its age limit.", message.message_id)
            message.fail()
            raise SkipMessage("Message age limit exceeded")


class TimeLimit(_TimeLimit):
    """Dramatiq's ``TimeLimit``: an attempt that runs past its ``time_limit`` (ms; message
    option, else actor option, else ``time_limit``) gets ``TimeLimitExceeded`` raised in its
    thread by the manager's monitor thread.

    Dramatiq's manager takes its lock for every deadline set and cleared. The lock keeps the
    monitor's loop over the deadlines from seeing the dict change size; assigning to a key
    already present does not change the size, and a thread only ever writes its own key. So
    a thread takes the lock only the first time (to add its key, which is never removed),
    then sets and clears its deadline with one plain assignment (atomic under the GIL). The
    monitor still reads and clears deadlines under the lock and kills the threads past
    theirs, as before. The one race is Dramatiq's own: a thread that finishes just as the
    monitor finds it overdue may get the exception in its next message (Dramatiq's monitor
    raises it after releasing the lock); here the monitor may then also clear that next
    message's deadline, which the exception is already interrupting.
    """

    @property
    def manager(self) -> Any:
        """Dramatiq's timeout manager (the ctypes one, or gevent's)."""
        return self._manager

    @manager.setter
    def manager(self, manager: Any) -> None:
        # Dramatiq's __init__ assigns it; so may a test. The hooks read the ctypes manager's
        # deadlines from here (one attribute, no test of the manager's type a message).
        self._manager = manager
        self._deadlines: dict[int, float | None] | None = (
            manager.deadlines if type(manager) is _CtypesTimeoutManager else None
        )

    def before_process_message(self, broker: Broker, message: Any) -> None:
        deadlines = self._deadlines
        actor = broker.actors.get(message.actor_name)
        if actor is None or deadlines is None:
            super().before_process_message(broker, message)  # type: ignore[no-untyped-call]
            return
        limit = message.options.get("time_limit") or actor.options.get(
            "time_limit", self.time_limit
        )
        thread_id = _get_ident()
        if thread_id in deadlines:
            deadlines[thread_id] = monotonic() + limit / 1000
        else:
            self._manager.add_timeout(thread_id, limit)

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        deadlines = self._deadlines
        if deadlines is None:
            super().after_process_message(  # type: ignore[no-untyped-call]
                broker, message, result=result, exception=exception
            )
            return
        thread_id = _get_ident()
        if thread_id in deadlines:
            deadlines[thread_id] = None
        else:
            self._manager.remove_timeout(thread_id)

    after_skip_message = after_process_message


class ShutdownNotifications(_ShutdownNotifications):
    """Dramatiq's ``ShutdownNotifications``: on worker shutdown, ``Shutdown`` is raised in
    the threads running a message whose ``notify_shutdown`` (message option, else actor
    option, else ``notify_shutdown``) is true.

    A thread adds itself to the manager's set only for such a message (as Dramatiq does),
    and after a message removes itself only if the set is not empty: with no actor asking
    for notifications (the usual case) the set stays empty, and removing from an empty set
    did nothing anyway.

    Its before hook is left out for messages without a ``notify_shutdown`` option whose
    actor does not ask for notifications (:meth:`wants_before_process_message`); assigning
    ``notify_shutdown`` is seen at once. Its after hooks are left out for every message
    until a thread is first added to the set (:attr:`notified`, under the ctypes manager):
    until then no thread can be in it. From then on they are called for every message,
    whatever its shape: leaving them out on the before hook's condition would leave a
    thread in the set when the selection changes *while* its notified message runs (its
    actor re-declared without ``notify_shutdown``), and a later message of that thread
    would be interrupted at shutdown. ``notified`` is set before the thread is added, and
    assigning it makes the brokers forget their selection, so the after hooks of the
    message that set it are called.
    """

    notify_shutdown = SelectionInput[bool]()
    #: Whether a thread was ever added to the manager's set (its after hooks are called
    #: from then on).
    notified = SelectionInput[bool]()

    def __init__(self, notify_shutdown: bool = False) -> None:
        super().__init__(notify_shutdown=notify_shutdown)
        self.notified = False

    def _actor_notifies(self, actor: Actor[Any, Any]) -> bool:
        """Whether ``actor``'s messages without a ``notify_shutdown`` option are notified."""
        notify = actor.options.get("notify_shutdown")
        return bool(self.notify_shutdown if notify is None else notify)

    def wants_before_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """False for a message without a ``notify_shutdown`` option whose actor (else this
        middleware) does not ask for notifications, under the ctypes manager."""
        return (
            shape.actor is None
            or type(self.manager) is not _CtypesShutdownManager
            or "notify_shutdown" in shape.option_keys
            or self._actor_notifies(shape.actor)
        )

    def wants_after_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """False until a thread was first added to the set, under the ctypes manager."""
        return self.notified or type(self.manager) is not _CtypesShutdownManager

    wants_after_skip_message = wants_after_process_message

    def before_process_message(self, broker: Broker, message: Any) -> None:
        actor = broker.actors.get(message.actor_name)
        if actor is None or type(self.manager) is not _CtypesShutdownManager:
            super().before_process_message(broker, message)  # type: ignore[no-untyped-call]
            return
        notify = message.options.get("notify_shutdown")
        if notify is None:
            notify = self._actor_notifies(actor)
        if notify:
            if not self.notified:
                self.notified = True  # before the thread is in the set: see the class doc
            self.manager.notifications.add(_get_ident())

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        manager = self.manager
        if type(manager) is not _CtypesShutdownManager:
            super().after_process_message(  # type: ignore[no-untyped-call]
                broker, message, result=result, exception=exception
            )
            return
        notifications = manager.notifications
        if notifications:
            notifications.discard(_get_ident())

    after_skip_message = after_process_message


def _callback_option(failed: bool) -> str:
    """The option naming the callback of a message that failed or succeeded."""
    return "on_failure" if failed else "on_success"


class Callbacks(_Callbacks):
    """Dramatiq's ``Callbacks``: after a success, the ``on_success`` actor (message option,
    else actor option) is sent ``(message.asdict(), result)``; after a failure,
    ``on_failure`` is sent ``(message.asdict(), {"type": ..., "message": ...})``. Its hook
    is left out for messages with no callback for their outcome
    (:meth:`wants_after_process_message`)."""

    def wants_after_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """False for a message without the callback option of its outcome whose actor has
        no such callback."""
        option = _callback_option(shape.failed)
        return (
            shape.actor is None
            or option in shape.option_keys
            or bool(shape.actor.options.get(option))
        )

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        actor = broker.actors.get(message.actor_name)
        if actor is None:
            super().after_process_message(  # type: ignore[no-untyped-call]
                broker, message, result=result, exception=exception
            )
            return
        option = _callback_option(exception is not None)
        if message.options.get(option) or actor.options.get(option):
            super().after_process_message(  # type: ignore[no-untyped-call]
                broker, message, result=result, exception=exception
            )


class Retries(_Retries):
    """Dramatiq's ``Retries``, unchanged but for :meth:`wants_after_process_message`: its
    hook returns at once when the message succeeded, so it is left out then."""

    def wants_after_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """True only after a failure (Dramatiq's hook returns at once without an
        exception)."""
        return shape.failed


class PeriodiqMiddleware(_PeriodiqMiddleware):  # type: ignore[misc]
    """periodiq's ``PeriodiqMiddleware``, unchanged but for
    :meth:`wants_before_process_message`: its hook returns at once for an actor without the
    ``periodic`` option, so it is left out for such an actor's messages."""

    def wants_before_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """False for a declared actor without the ``periodic`` option (periodiq's hook
        reads only the actor's options, then ``scheduled_at``)."""
        return shape.actor is None or "periodic" in shape.actor.options


class CurrentMessage(_CurrentMessage):
    """Dramatiq's ``CurrentMessage``: ``CurrentMessage.get_current_message()`` (on this
    class or Dramatiq's: the same context variable) is the message being processed, None
    outside an actor. The hooks call the variable's ``set`` directly."""

    def before_process_message(self, broker: Broker, message: Any) -> None:
        _set_current(message)

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        _set_current(None)


_set_current = _CurrentMessage._MESSAGE.set

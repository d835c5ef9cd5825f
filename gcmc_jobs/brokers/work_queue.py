"""The queue a worker's consumer threads hand messages to its worker threads through.

Dramatiq 2.2's ``Worker`` puts every message it fetched on ``worker.work_queue``, a
:class:`queue.PriorityQueue` of ``dramatiq.worker._WorkQueueItem``, and each worker thread
takes it from there. That queue is pure Python: ``put`` and ``get`` go through a
:class:`threading.Condition` (``notify`` walks its waiters in Python, a ``get`` with a
timeout allocates a lock per wait), and its heap orders the items with the dataclass's
generated ``__lt__``. In a py-spy profile of a gcmc-jobs worker (issue 17's W1 no-op
workload, 2026-12-02) ``Queue.put`` was 5.9 % of the worker's CPU (``Condition.notify`` 4.9 %
of it) and ``Queue.get`` 2.8 %, plus the item comparisons.

:class:`WorkQueue` keeps what Dramatiq relies on (priority order, first in first out within
a priority, ``task_done``/``join``/``unfinished_tasks``, :class:`queue.Empty` from a ``get``
that times out or would block) on C-level primitives: a heap of ``(priority, sequence,
item)`` under a :class:`threading.Lock` (the sequence breaks ties, so items are never
compared), and a :class:`queue.SimpleQueue` of tokens, one per item, as the counting
semaphore a ``get`` blocks on. :func:`install_work_queue` puts one in a worker when it boots
(``before_worker_boot``, before any thread of the worker exists).

Each of the worker's consumer threads also holds a ``delay_queue`` (a ``PriorityQueue`` by
``eta``) and drains it with ``get_nowait`` after every message it hands out: on an empty
queue that raises :class:`queue.Empty` through the Condition, 2-3 % of the same profile
(``Queue.get_nowait``). :func:`install_delay_queue` gives each consumer thread a
:class:`WorkQueue` when it boots (``after_consumer_thread_boot``, emitted by the thread itself
before it consumes anything), whose empty ``get_nowait`` raises from C; and
:func:`install_hand_off` gives it a cheaper ``handle_message``, its hand-off of a message to
the work queue.

:class:`WorkQueues` is the middleware that calls all three; gcmc-jobs' ``RedisBroker`` and
``RabbitmqBroker`` put one first in their middleware list (:func:`with_work_queues`), the
stub broker does not.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from heapq import heappop, heappush
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from dramatiq import Middleware
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import default_middleware

from gcmc_jobs.logging.library import get_logger

if TYPE_CHECKING:
    from dramatiq import Broker, Worker
    from dramatiq.broker import MessageProxy
    from dramatiq.worker import ConsumerThread, _WorkQueueItem

__all__ = [
    "WorkQueue",
    "WorkQueues",
    "install_delay_queue",
    "install_hand_off",
    "install_work_queue",
    "with_work_queues",
]

logger = get_logger("gcmc_jobs.brokers.work_queue")


class _Entry(tuple[int, int, Any]):
    """An item of :meth:`WorkQueue.put_message`: ``(priority, sequence, message)``, the heap
    entry itself, with the ``priority`` and ``message`` of Dramatiq's ``_WorkQueueItem``
    (which also holds a put time, read from the clock on every put)."""

    __slots__ = ()
    priority = property(itemgetter(0))
    message = property(itemgetter(2))


class WorkQueue:
    """A priority queue of Dramatiq's ``_WorkQueueItem`` with the interface of
    :class:`queue.PriorityQueue` that Dramatiq's worker uses, unbounded.

    Items come out lowest ``item.priority`` first, in the order they were put within a
    priority. :meth:`get` raises :class:`queue.Empty` when nothing came within ``timeout``
    seconds (or at once with ``block=False``). :meth:`join` returns once :meth:`task_done`
    was called for every item put. ``put`` takes the lock once and wakes one waiting
    ``get`` in C; ``join`` costs nothing until someone waits on it.
    """

    maxsize = 0  # unbounded, as Dramatiq's

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, _WorkQueueItem]] = []
        self._lock = threading.Lock()
        # One token per item pushed, put after the push: a get that took a token finds an
        # item on the heap.
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._sequence = itertools.count()
        self._joiners: list[threading.Event] = []
        #: Items put and not yet marked done with :meth:`task_done` (Dramatiq's
        #: ``Worker.join`` reads it).
        self.unfinished_tasks = 0

    def put(self, item: _WorkQueueItem, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item`` (never blocks: the queue is unbounded; ``block`` and ``timeout`` are
        accepted for :class:`queue.Queue`'s signature)."""
        with self._lock:
            heappush(self._heap, (item.priority, next(self._sequence), item))
            self.unfinished_tasks += 1
        self._tokens.put(None)

    def put_message(self, priority: int, message: MessageProxy) -> None:
        """Add ``message`` at ``priority``, as :meth:`put` of a ``_WorkQueueItem`` of them
        would; :meth:`get` returns it in an item with the same ``priority`` and
        ``message``. What the consumer threads' hand-off puts (:func:`install_hand_off`)."""
        with self._lock:
            heappush(self._heap, _Entry((priority, next(self._sequence), message)))
            self.unfinished_tasks += 1
        self._tokens.put(None)

    def put_nowait(self, item: _WorkQueueItem) -> None:
        """:meth:`put`."""
        self.put(item)

    def get(self, block: bool = True, timeout: float | None = None) -> _WorkQueueItem:
        """Remove and return the item of lowest priority (the oldest of them); wait at most
        ``timeout`` seconds (None: forever) for one, or not at all when ``block`` is false,
        then raise :class:`queue.Empty`."""
        self._tokens.get(block, timeout)
        with self._lock:
            entry = heappop(self._heap)
        # An _Entry has the _WorkQueueItem's fields Dramatiq reads (priority, message).
        return entry if type(entry) is _Entry else entry[2]  # type: ignore[return-value]

    def get_nowait(self) -> _WorkQueueItem:
        """:meth:`get` without waiting."""
        return self.get(False)

    def task_done(self) -> None:
        """Mark one item taken with :meth:`get` as processed; :class:`ValueError` when
        called more times than items were put."""
        with self._lock:
            unfinished = self.unfinished_tasks - 1
            if unfinished < 0:
                raise ValueError("task_done() called too many times")
            self.unfinished_tasks = unfinished
            if unfinished == 0 and self._joiners:
                for done in self._joiners:
                    done.set()
                self._joiners.clear()

    def join(self) -> None:
        """Wait until every item put was marked done with :meth:`task_done`."""
        with self._lock:
            if self.unfinished_tasks == 0:
                return
            done = threading.Event()
            self._joiners.append(done)
        done.wait()

    def qsize(self) -> int:
        """How many items wait to be taken."""
        return len(self._heap)

    def empty(self) -> bool:
        """Whether no item waits to be taken."""
        return not self._heap

    def full(self) -> bool:
        """Never: the queue is unbounded."""
        return False


def _replaceable(current: Any) -> bool:
    """Whether ``current`` is Dramatiq's own :class:`queue.PriorityQueue`, empty."""
    return (
        type(current) is queue.PriorityQueue
        and not current.unfinished_tasks
        and not current.qsize()
    )


def install_work_queue(broker: Broker, worker: Worker) -> bool:
    """Replace ``worker.work_queue`` with a :class:`WorkQueue`, as a ``before_worker_boot``
    hook (``Worker.start`` emits it before it starts any worker or consumer thread, all of
    which take the queue from the worker). True when replaced; a queue that is not Dramatiq's
    own empty :class:`queue.PriorityQueue` (a worker that already started, or another
    replacement) is left alone, logged at debug."""
    current: Any = getattr(worker, "work_queue", None)
    if not _replaceable(current):
        logger.debug("work_queue_kept", kind=type(current).__name__)
        return False
    worker.work_queue = WorkQueue()  # type: ignore[assignment]  # same interface, not a subclass
    return True


def install_delay_queue(broker: Broker, thread: ConsumerThread) -> bool:
    """Replace a consumer thread's ``delay_queue`` with a :class:`WorkQueue`, as an
    ``after_consumer_thread_boot`` hook (emitted by the thread itself before it consumes
    anything; its items are ordered by ``eta``). True when replaced; anything but Dramatiq's
    own empty :class:`queue.PriorityQueue` is left alone, logged at debug. (After a
    connection error the thread makes itself a new ``PriorityQueue``, which it keeps.)"""
    current: Any = getattr(thread, "delay_queue", None)
    if not _replaceable(current):
        logger.debug("delay_queue_kept", kind=type(current).__name__)
        return False
    thread.delay_queue = WorkQueue()  # type: ignore[assignment]  # same interface
    _skip_an_empty_delay_queue(thread)
    return True


def _skip_an_empty_delay_queue(thread: ConsumerThread) -> None:
    """Make ``thread.handle_delayed_messages`` return at once while its delay queue is one
    of ours and empty. Dramatiq calls it after every message the thread hands out, and its
    ``iter_queue`` builds a generator and raises and catches :class:`queue.Empty` to find
    nothing (~5 % of a no-op worker's GIL samples, issue 17). Only the thread itself puts on
    and takes from its delay queue, so reading the heap without the lock is safe; any
    other queue (the ``PriorityQueue`` it makes after a connection error) goes through
    Dramatiq's method as before."""
    handle = thread.handle_delayed_messages

    def handle_delayed_messages() -> None:
        delay_queue: Any = thread.delay_queue
        if type(delay_queue) is WorkQueue and not delay_queue._heap:
            return
        handle()

    thread.handle_delayed_messages = handle_delayed_messages  # type: ignore[method-assign]


def install_hand_off(broker: Broker, thread: ConsumerThread) -> bool:
    """Give a consumer thread whose work queue is a :class:`WorkQueue` a cheaper
    ``handle_message``, the hand-off of each fetched message to the worker threads.
    Dramatiq's reads the ``eta`` twice, calls the debug log, and builds a
    ``_WorkQueueItem`` (a frozen dataclass that reads the clock for its put time): with the
    worker's get, 1.6 µs of CPU a message, 1.0 µs here (same run). A message without an
    ``eta``, of a known actor, goes straight on the work queue
    (:meth:`WorkQueue.put_message`) at its actor's priority, as Dramatiq's method puts it.
    Everything else — an ``eta`` (delayed or to fix), an unknown actor (failed and
    dead-lettered), the thread's logger at DEBUG (Dramatiq logs every hand-off) — goes
    through Dramatiq's method. True when installed, as an
    ``after_consumer_thread_boot`` hook (before the thread consumes anything)."""
    work_queue: Any = getattr(thread, "work_queue", None)
    if type(work_queue) is not WorkQueue:
        logger.debug("hand_off_kept", kind=type(work_queue).__name__)
        return False
    handle = thread.handle_message
    get_actor = broker.get_actor
    put_message = work_queue.put_message
    debug_enabled = thread.logger.isEnabledFor

    def handle_message(message: MessageProxy) -> None:
        if "eta" in message.options or debug_enabled(logging.DEBUG):
            handle(message)
            return
        try:
            actor = get_actor(message.actor_name)
        except ActorNotFound:
            handle(message)
            return
        put_message(actor.priority, message)

    thread.handle_message = handle_message  # type: ignore[method-assign]
    return True


class WorkQueues(Middleware):
    """Gives a Dramatiq worker booting on the broker a :class:`WorkQueue` as its work queue
    (:func:`install_work_queue`, ``before_worker_boot``), and each of its consumer threads one
    as its delay queue (:func:`install_delay_queue`) and the cheaper hand-off to it
    (:func:`install_hand_off`), both ``after_consumer_thread_boot``.

    First in the broker's list, its ``before_worker_boot`` runs before any other
    middleware's; its ``after_consumer_thread_boot`` runs last (Dramatiq runs ``after_*``
    hooks in reverse order), which is still before the thread consumes anything: the thread
    emits the signal itself, then starts consuming."""

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        install_work_queue(broker, worker)

    def after_consumer_thread_boot(self, broker: Broker, thread: ConsumerThread) -> None:
        install_delay_queue(broker, thread)
        install_hand_off(broker, thread)


def with_work_queues(middleware: list[Middleware] | None) -> list[Middleware]:
    """``middleware`` (None: Dramatiq's default stack, as ``Broker.__init__`` makes it) with
    a :class:`WorkQueues` first, unless it holds one already."""
    if middleware is None:
        middleware = [m() for m in default_middleware]
    if any(isinstance(m, WorkQueues) for m in middleware):
        return list(middleware)
    return [WorkQueues(), *middleware]

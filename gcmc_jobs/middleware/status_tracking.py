"""Status tracking: each state change of a message is recorded in a :class:`StatusStore`, so
that a host can ask what became of a message it sent (:func:`gcmc_jobs.status`).

=================  ===========================================================================
state              recorded when
=================  ===========================================================================
``enqueued``       it was written to its queue (``after_enqueue``, no delay)
``delayed``        it was written with a delay > 0, or a middleware put it back with one (a
                   rate limit, a paused queue)
``running``        an attempt starts (``before_process_message``, after the middleware that
                   may skip it)
``succeeded``      an attempt succeeded
``retrying``       an attempt failed and ``Retries`` re-sent it (``due_at``: the next attempt)
``failed``         it failed for good and the dead-letter store did not take it (it stays in
                   the broker's ``<queue>.XQ``)
``dead_lettered``  it failed for good and :class:`~gcmc_jobs.middleware.DeadLetters` stored it
=================  ===========================================================================

The sender's changes (``enqueued``, ``delayed``) are written at once, one store write (one
Redis round trip) each, so ``status()`` right after ``send()`` sees them; a bulk enqueue
(:func:`gcmc_jobs.brokers.bulk.enqueue_many`) records a whole chunk in one, inside the
chunk's own ``MULTI`` when the store is on the broker's Redis (no round trip of its own; the
records are there when the messages are, and a failure to record still fails only the
records, logged as ``status_not_recorded``). A worker's changes
are gathered for ``batch_ms`` (20) and written in one call per batch by a background thread
(as ``Deduplication`` completes its keys): the two writes every message costs a worker
(``running``, ``succeeded``) then add no round trip to its processing, and appear in the store
within about ``batch_ms``. A ``succeeded`` record holds what its ``running`` wrote too (its
``started_at``), and takes its place when the batch thread has not taken ``running`` out
yet (most messages: one record written, not two; a message still running when its batch
is written reads ``running``); on Redis a message's other changes in one batch are merged
into one conditional write that leaves the record exactly as the writes one by one would
(:meth:`.RedisStatusStore.record_many`). ``batch_ms=0`` writes each change at once. The
record holds
the actor, queue, attempts (started so far), times in epoch ms (``enqueued_at``,
``started_at``, ``finished_at``, ``due_at``, ``updated_at``: one clock reading a change, so
``updated_at`` is the time it started or finished) and the last error's type and
text (redacted, at most :data:`ERROR_CHARS` characters); never the message's arguments or
options. Records expire ``ttl_ms`` after their last change; ``ttl_ms=0`` records nothing.

Where it sits in the stack (``gcmc_jobs.brokers``): after ``Pause``, ``Deduplication`` and
``RateLimits`` (a message they skip is never ``running``), before ``DeadLetters`` (so its
``after_nack`` runs after the one of ``DeadLetters`` and sees whether the store took the
message: ``_context.DEAD_LETTERED``), after ``Retries`` (its ``after_process_message`` sees
the error before ``Retries`` decides to re-send or give up). A retry falling due keeps the
state ``retrying`` until it runs; a delayed message falling due becomes ``enqueued``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.middleware import _context
from gcmc_jobs.middleware._batching import Batcher
from gcmc_jobs.middleware.stores.status import RedisStatusStore, StatusStore, sequence
from gcmc_jobs.redaction import redact_text

__all__ = ["DEFAULT_TTL_MS", "ERROR_CHARS", "StatusTracking"]

logger = get_logger("gcmc_jobs.middleware.status_tracking")

#: How long a record is kept after its last change by default: 7 days, ms.
DEFAULT_TTL_MS = 7 * 86_400_000
#: The longest error text a record keeps, characters.
ERROR_CHARS = 200


def _error_fields(exception: BaseException | None) -> dict[str, str | int]:
    if exception is None:
        return {}
    return {
        "error_type": type(exception).__name__,
        "error": redact_text(str(exception))[:ERROR_CHARS],
    }


#: A worker's record as the batch thread writes it: (message id, seq, fields).
_Record = tuple[str, int, Mapping[str, str | int]]


class _Thread:
    """What a thread holds between hooks: the message it runs (id, attempt, when it started
    and the batch's cell of its ``running`` record) and the error of its attempt that
    failed, until ``Retries`` re-sends or gives up (one object per thread: one thread-local
    lookup a hook)."""

    __slots__ = ("attempt", "failure", "message_id", "running", "started_at")

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.attempt = 0
        self.started_at = 0
        self.running: list[_Record] | None = None
        self.failure: tuple[str, BaseException] | None = None


class StatusTracking(Middleware):
    """Record each message's state changes in ``store`` (see the module docstring).

    Parameters:
      store: a :class:`~.stores.status.StatusStore` (Redis, or the in-process stub).
      ttl_ms: how long a record is kept after its last change, ms (default 7 days); 0: record
        nothing.
      batch_ms: how long a worker's changes are gathered before they are written in one
        call, ms (default 20); 0: each is written at once. A batch that cannot be written
        (Redis down) is logged and dropped: only the statuses are lost, never a message.
      clock: returns the time in seconds since the epoch (``time.time``).
    """

    def __init__(
        self,
        store: StatusStore,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        batch_ms: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_ms < 0:
            raise ValueError(f"ttl_ms must be >= 0 (0: off), not {ttl_ms}")
        if batch_ms < 0:
            raise ValueError(f"batch_ms must be >= 0 (0: no batching), not {batch_ms}")
        self.store = store
        self.ttl_ms = ttl_ms
        self.batch_ms = batch_ms
        self.clock = clock
        self._local = threading.local()
        # Each item a cell: a list of one record, which the batch thread takes out
        # (list.pop, atomic) and a message's "succeeded" may replace before it does
        # (_write's ``replacing``).
        self._batch: Batcher[list[_Record]] = Batcher(self._write_batch, wait_ms=batch_ms)

    def _write_batch(self, cells: Sequence[list[_Record]]) -> None:
        self.store.record_many([cell.pop() for cell in cells], self.ttl_ms)

    def flush(self) -> None:
        """Write the worker's gathered changes now (tests; done at worker shutdown)."""
        self._batch.close()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.flush()

    def _thread(self) -> _Thread:
        try:
            thread: _Thread = self._local.thread
        except AttributeError:
            thread = self._local.thread = _Thread()
        return thread

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def _write(
        self,
        message: Any,
        state: str,
        attempt: int,
        fields: Mapping[str, str | int],
        *,
        redelivered: bool = False,
        worker: bool = False,
        now: int | None = None,
        replacing: list[_Record] | None = None,
    ) -> list[_Record] | None:
        """Record ``state`` of ``message``: at once, or for a worker (``worker``) put on the
        batch, returning the batch's cell of the record. ``now``: the time of the change
        (read from the clock when None). ``replacing``: the cell of an earlier record of
        the message whose fields this one holds too: when the batch thread has not taken
        that record out yet, this one takes its place (one record written, not two)."""
        if now is None:
            now = self._now()
        seq = sequence(state, attempt, redelivered=redelivered)
        record = self._record(message, state, attempt, now, fields)
        if worker and self.batch_ms:
            item: _Record = (message.message_id, seq, record)
            if replacing is not None:
                try:
                    replacing[0] = item  # atomic: fails once the batch thread took it
                    return replacing
                except IndexError:
                    pass  # taken (written, or being written): this record goes on its own
            cell: list[_Record] = [item]
            self._batch.put(cell)
            return cell
        try:
            self.store.record(message.message_id, seq, record, self.ttl_ms)
        except Exception as exc:  # the message goes on: only its status is missing
            self._not_recorded(exc, state, [message.message_id])
        return None

    @staticmethod
    def _not_recorded(exc: Exception, state: str, message_ids: Sequence[str]) -> None:
        logger.warning(
            "status_not_recorded",
            state=state,
            message_id=message_ids[0],
            messages=len(message_ids),
            error=f"{type(exc).__name__}: {exc}",
        )

    @staticmethod
    def _record(
        message: Any, state: str, attempt: int, now: int, fields: Mapping[str, str | int]
    ) -> dict[str, str | int]:
        # One dict, ``fields`` unpacked into it (a dict then updated with them: ~0.2 µs more
        # a record in a loop, two records a message).
        return {
            "state": state,
            "actor": message.actor_name,
            "queue": q_name(message.queue_name),
            "attempts": attempt,
            "enqueued_at": int(message.message_timestamp),
            "updated_at": now,
            **fields,
        }

    # -- send side ---------------------------------------------------------------------

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        if not self.ttl_ms:
            return
        retries = int(message.options.get("retries") or 0)
        thread = self._thread()
        failure = thread.failure
        if failure is not None and failure[0] == message.message_id and retries:
            # Retries re-sent the attempt that just failed (it has counted it in "retries").
            thread.failure = None
            now = self._now()
            fields: dict[str, str | int] = {"due_at": now + (delay or 0), "finished_at": now}
            fields.update(_error_fields(failure[1]))
            self._write(message, "retrying", retries, fields, worker=True)
            return
        redelivered = _context.REENQUEUE.get() is not None
        if delay is None and retries and not redelivered:
            return  # a retry falling due: it stays "retrying" until it runs
        if delay:
            due = {"due_at": self._now() + delay}
            self._write(message, "delayed", retries + 1, due, redelivered=redelivered)
        else:
            self._write(message, "enqueued", retries + 1, {"due_at": ""}, redelivered=redelivered)

    def after_enqueue_many(
        self, broker: dramatiq.Broker, messages: Sequence[Any], delay: int | None
    ) -> None:
        """A bulk enqueue's written chunk (:func:`~gcmc_jobs.brokers.bulk.enqueue_many`):
        :meth:`record_enqueued`, one store call instead of one per message. Not called for
        a chunk :meth:`enqueue_many_in` recorded."""
        self.record_enqueued(messages, delay)

    def enqueue_many_in(
        self, broker: dramatiq.Broker, transaction: Any, messages: Sequence[Any], delay: int | None
    ) -> bool:
        """Add the records of a bulk enqueue's chunk to the chunk's ``MULTI`` on ``broker``'s
        Redis (``transaction.optional(on_error, *command)``: a command whose failure fails
        only the records; an ``EVALSHA`` of the store's script, which
        ``transaction.load_script`` loads once per call) and return True; False (nothing
        added: :meth:`after_enqueue_many` records them after the write) when the store is
        not on the broker's Redis."""
        if not self.ttl_ms:
            return True  # nothing to record
        store = self.store
        client = getattr(broker, "client", None)
        if not isinstance(store, RedisStatusStore) or not _same_redis(store.client, client):
            return False
        state = "delayed" if delay else "enqueued"
        ttl = self.ttl_ms
        transaction.load_script(store.record_each_script)
        for seq, fields, ids, stamps in self._groups(messages, delay):

            def failed(exc: Exception, ids: list[str] = ids) -> None:
                self._not_recorded(exc, state, ids)

            command = store.record_each_command(ids, seq, fields, "enqueued_at", stamps, ttl)
            transaction.optional(failed, *command)
        return True

    def _groups(
        self, messages: Sequence[Any], delay: int | None
    ) -> list[tuple[int, dict[str, str | int], list[str], list[int]]]:
        """The records of newly sent ``messages`` (``enqueued``, or ``delayed`` when ``delay``
        > 0), grouped by what they share (attempt, actor, queue): per group its sequence
        number, shared fields, message ids and each one's ``enqueued_at``."""
        now = self._now()
        state = "delayed" if delay else "enqueued"
        groups: dict[tuple[int, str, str], tuple[list[str], list[int]]] = {}
        for m in messages:
            retries = m.options.get("retries")
            group = (int(retries or 0) + 1, m.actor_name, m.queue_name)
            found = groups.get(group)
            if found is None:
                found = groups[group] = ([], [])
            found[0].append(m.message_id)
            found[1].append(int(m.message_timestamp))
        result = []
        for (attempt, actor, queue), (ids, stamps) in groups.items():
            fields: dict[str, str | int] = {
                "state": state,
                "actor": actor,
                "queue": q_name(queue),
                "attempts": attempt,
                "updated_at": now,
            }
            if delay:
                fields["due_at"] = now + delay
            result.append((sequence(state, attempt), fields, ids, stamps))
        return result

    def record_enqueued(self, messages: Sequence[Any], delay: int | None) -> None:
        """Record newly sent ``messages`` as enqueued (or delayed, when ``delay`` > 0) in one
        store call (one round trip)."""
        if not self.ttl_ms or not messages:
            return
        state = "delayed" if delay else "enqueued"
        groups = self._groups(messages, delay)
        try:
            if len(groups) == 1:
                seq, fields, ids, stamps = groups[0]
                self.store.record_each(ids, seq, fields, "enqueued_at", stamps, self.ttl_ms)
                return
            records = [
                (message_id, seq, {**fields, "enqueued_at": stamp})
                for seq, fields, ids, stamps in groups
                for message_id, stamp in zip(ids, stamps, strict=True)
            ]
            self.store.record_many(records, self.ttl_ms)
        except Exception as exc:
            self._not_recorded(exc, state, [m.message_id for m in messages])

    # -- worker side ---------------------------------------------------------------------

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        thread = self._thread()
        attempt = int(message.options.get("retries") or 0) + 1
        thread.failure = None
        thread.message_id = message.message_id
        thread.attempt = attempt
        if self.ttl_ms:
            # One clock reading: the time it started is the time of the change.
            now = thread.started_at = self._now()
            started: dict[str, str | int] = {"started_at": now, "finished_at": ""}
            thread.running = self._write(message, "running", attempt, started, worker=True, now=now)

    def _attempt(self, message: Any) -> int:
        # The attempt that ran: Retries has already counted it once we see the outcome.
        thread = self._thread()
        if thread.message_id == message.message_id:
            return thread.attempt
        return int(message.options.get("retries") or 0) + 1

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None:
            # Retries (earlier in the stack) decides after this hook: a re-send is recorded
            # as "retrying" by after_enqueue, giving up as "failed"/"dead_lettered" by
            # after_nack.
            self._thread().failure = (message.message_id, exception)
            return
        if not self.ttl_ms:
            return
        now = self._now()
        thread = self._thread()
        if thread.message_id != message.message_id:  # not started on this thread
            finished: dict[str, str | int] = {"finished_at": now}
            attempt = self._attempt(message)
            self._write(message, "succeeded", attempt, finished, worker=True, now=now)
            return
        # The record holds what "running" wrote too (its started_at): when "running" is still
        # in the unwritten batch, this record takes its place.
        running, thread.running = thread.running, None
        finished = {"finished_at": now, "started_at": thread.started_at}
        self._write(
            message, "succeeded", thread.attempt, finished, worker=True, now=now, replacing=running
        )

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        thread = self._thread()
        failure = thread.failure
        thread.failure = None
        if not self.ttl_ms:
            return
        exception = (
            failure[1]
            if failure is not None and failure[0] == message.message_id
            else getattr(message, "_exception", None)
        )
        stored = _context.DEAD_LETTERED.get() == message.message_id
        fields = _error_fields(exception)
        reason = message.options.get("dead_letter_reason")
        if reason is not None and not fields:
            fields = {"error_type": str(reason), "error": ""}
        self._write(
            message,
            "dead_lettered" if stored else "failed",
            self._attempt(message),
            {"finished_at": self._now(), "due_at": "", **fields},
            worker=True,
        )

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        thread: _Thread | None = getattr(self._local, "thread", None)
        if thread is not None:
            thread.failure = None


#: The connection settings that name a Redis server and database.
_SERVER_KEYS = ("host", "port", "path", "db", "username", "service_name")


def _same_redis(a: Any, b: Any) -> bool:
    """Whether clients ``a`` and ``b`` talk to the same Redis server and database (so that
    a write of ``a`` can join a transaction of ``b``)."""
    if a is None or b is None:
        return False
    if a is b:
        return True
    pool_a = getattr(a, "connection_pool", None)
    pool_b = getattr(b, "connection_pool", None)
    if pool_a is None or pool_b is None or pool_a.connection_class is not pool_b.connection_class:
        return False
    kwargs_a, kwargs_b = pool_a.connection_kwargs, pool_b.connection_kwargs
    if "host" not in kwargs_a and "path" not in kwargs_a:
        return False
    return all(kwargs_a.get(key) == kwargs_b.get(key) for key in _SERVER_KEYS)

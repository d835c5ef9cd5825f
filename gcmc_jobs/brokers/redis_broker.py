"""Dramatiq's Redis broker, with a consumer that dead-letters messages it cannot decode.

Dramatiq 2.2's Redis consumer decodes each fetched message inside its iterator; a body
that is not a Dramatiq message (not JSON, or JSON without a message's fields) raises
``DecodeError`` out of it. The worker then logs "Consumer encountered an unexpected error",
throws the consumer away and starts a new one: the bad message *and every message prefetched
with it* stay in this worker's "unacknowledged" set, invisible, until the worker process
dies and another worker's sweep puts them back (where the bad one strikes again). One
malformed message written into a queue by hand or by a buggy producer stalls good work.

:class:`RedisBroker` changes only that: a body that does not decode is moved to the
queue's dead-letter queue (``<queue>.XQ``, Dramatiq's own ``nack``) and announced to the
middleware as a failed message (``after_nack``), so ``DeadLetters`` records it with a
readable error (``error_type`` ``dramatiq.errors.DecodeError``, the first bytes of the body
in ``options``); the consumer keeps going with the messages after it.

:meth:`RedisBroker.forget_dead_message` takes a message out of ``<queue>.XQ`` once
``DeadLetters`` has stored it: the broker's dead-letter queue keeps only what the store
could not take.

**Delayed messages that fall due.** A worker fetches delayed messages from ``<queue>.DQ``
long before they are due and holds them in memory; at their ``eta`` Dramatiq enqueues a copy
on ``<queue>`` and acknowledges the delayed one. So that an operator can still cancel or
promote a delayed message a worker holds (:mod:`gcmc_jobs.ops.live_messages`), the consumer
of a delay queue marks what it fetches (:data:`FROM_DELAY_QUEUE`), and the copy is written
by :data:`DUE_LUA`, which takes the delayed body out of ``<queue>.DQ.msgs`` and writes the
ready one in one atomic step: when the body is gone (cancelled or promoted meanwhile) the
copy is dropped, logged ``delayed_message_dropped``. Same number of Redis calls as before.

**Fetched batches.** The consumer decodes a fetched batch at once (with Dramatiq's JSON
encoder, the default, without its generic path: :func:`_decode`) and emits ``after_fetch``
with it (a hook of this broker only, like bulk enqueue's ``before_enqueue_many``; not for a
delay queue, whose messages do not run where they are fetched): how ``RateLimits`` books
the slots of a batch in one call rather than one per message.

**A full prefetch.** While all ``prefetch`` messages it fetched are outstanding (handed to
the worker threads, not yet acknowledged), Dramatiq's consumer counts a miss and sleeps its
empty-queue backoff (5-10 ms, growing), which caps a process at about ``prefetch`` messages
per sleep. Ours waits instead until acknowledgements (or nacks) have freed three quarters
of it (all of it below a prefetch of 4), then fetches them in one call; after ``timeout`` ms
without one it returns ``None`` to the worker's loop (which checks for a stop or a pause
then), and the wait is not a miss. A delay queue's consumer keeps Dramatiq's backoff: its
messages are acknowledged by its own thread, between two fetches. Closing a consumer puts
the messages it fetched but did not hand out yet back on the queue.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import dramatiq.message as _dramatiq_message
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker as _DramatiqRedisBroker
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import compute_backoff, current_millis, dq_name, q_name
from dramatiq.encoder import JSONEncoder
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.middleware import MiddlewareError

from gcmc_jobs.brokers.bulk import release_unsent
from gcmc_jobs.brokers.hooks import SelectingEmitter
from gcmc_jobs.brokers.work_queue import with_work_queues
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.redis_keys import (
    acks_key,
    dead_queue_key,
    heartbeats_key,
    messages_key,
    queue_key,
)
from gcmc_jobs.redis_scripts import ACK_MANY_LUA, ScriptRunner

__all__ = [
    "DEFAULT_ACK_BATCH_MS",
    "DUE_LUA",
    "FROM_DELAY_QUEUE",
    "UNDECODABLE_ACTOR",
    "RedisBroker",
]

logger = get_logger("gcmc_jobs.brokers.redis_broker")

#: ``actor`` of the dead-letter record of a message that could not be decoded.
UNDECODABLE_ACTOR = "(undecodable message)"
#: How much of an undecodable body the dead-letter record keeps, characters.
PREVIEW_CHARS = 500
#: Option set on a message fetched from a delay queue (``<queue>.DQ``): its enqueue when it
#: falls due goes through :data:`DUE_LUA`. Never written to Redis.
FROM_DELAY_QUEUE = "gcmc_from_delay_queue"

# KEYS: the delay queue's messages hash, the ready list, the ready messages hash.
# ARGV: the delayed message's redis id, the ready copy's redis id, the ready copy's body.
# 1: moved; 0: the delayed body is gone (cancelled or promoted): nothing written.
DUE_LUA = """
if redis.call('hdel', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('hset', KEYS[3], ARGV[2], ARGV[3])
redis.call('rpush', KEYS[2], ARGV[2])
return 1
"""

# This process's id, read again in a forked child (os.register_at_fork below): what an
# acknowledgement compares with its batcher's, instead of a getpid() system call each.
_process_id = os.getpid()


def _forked() -> None:
    global _process_id
    _process_id = os.getpid()


os.register_at_fork(after_in_child=_forked)

#: How long a worker gathers acknowledgements before writing them in one call, ms.
DEFAULT_ACK_BATCH_MS = 10
#: Wait before writing a batch of acknowledgements again after it failed (Redis down), s.
ACK_RETRY_SECONDS = 1.0


class _AckBatcher:
    """Acknowledgements put by the worker threads, written by one daemon thread: after the
    first of a batch it waits ``wait_ms`` (less when flushed), then writes everything queued, one
    ``write(queue, ids)`` call per queue. A batch that fails (Redis down or restarting) is
    kept and written again every :data:`ACK_RETRY_SECONDS` until Redis takes it, as Dramatiq
    retries a failed acknowledgement. :meth:`flush` writes what is queued and waits for it.

    The thread starts on the first :meth:`put` of a process (a forked worker process gets
    its own).
    """

    def __init__(self, write: Callable[[str, list[str]], None], *, wait_ms: int) -> None:
        self.write = write
        self.wait_ms = wait_ms
        self._queue: queue.SimpleQueue[tuple[str, str] | threading.Event] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._wake = threading.Event()  # set by flush: the gathering wait ends at once
        self._pid: int | None = None

    def put(self, queue_name: str, redis_message_id: str) -> None:
        """Queue the acknowledgement of one message of ``queue_name``."""
        if self._pid != _process_id:
            self._start()
        self._queue.put((queue_name, redis_message_id))

    def flush(self, timeout: float = 30) -> bool:
        """Write every acknowledgement queued so far; False when they were not all written
        within ``timeout`` seconds (Redis down: they stay queued, retried)."""
        if self._pid != _process_id:
            return True  # nothing was put in this process
        done = threading.Event()
        self._queue.put(done)
        self._wake.set()
        return done.wait(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._pid == _process_id:
                return
            self._queue = queue.SimpleQueue()  # a forked copy's items are its parent's
            self._wake = threading.Event()  # and its Event may be in any state
            threading.Thread(target=self._run, name="gcmc-jobs-acks", daemon=True).start()
            self._pid = _process_id

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if not isinstance(first, threading.Event):
                self._wake.wait(self.wait_ms / 1000)
            self._wake.clear()
            items = [first]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending: dict[str, list[str]] = {}
            waiting: list[threading.Event] = []
            for item in items:
                if isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    pending.setdefault(item[0], []).append(item[1])
            for queue_name, ids in pending.items():
                self._write(queue_name, ids)
            for event in waiting:
                event.set()

    def _write(self, queue_name: str, ids: list[str]) -> None:
        while True:
            try:
                self.write(queue_name, ids)
                return
            except Exception as exc:
                logger.warning(
                    "ack_batch_failed",
                    queue=queue_name,
                    messages=len(ids),
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=ACK_RETRY_SECONDS,
                )
                time.sleep(ACK_RETRY_SECONDS)


class _FieldsProxy(MessageProxy):
    """A :class:`~dramatiq.broker.MessageProxy` holding its message's fields as its own
    attributes. Dramatiq's proxy reaches each of them through ``__getattr__`` (a failed
    lookup, then ``getattr`` on the message): the whole stack reads ``options``,
    ``message_id``, ``actor_name``… about 40 times a message, ~10 µs of CPU. The message is
    a frozen dataclass, so the copies never go stale (``options`` is the same dict)."""

    def __init__(self, message: Message[Any]) -> None:
        super().__init__(message)
        self.queue_name = message.queue_name
        self.actor_name = message.actor_name
        self.args = message.args
        self.kwargs = message.kwargs
        self.options = message.options
        self.message_id = message.message_id
        self.message_timestamp = message.message_timestamp


#: The fields of a Dramatiq message (``dataclasses.fields(Message)``).
_MESSAGE_FIELDS = frozenset(field.name for field in dataclasses.fields(Message))
# The scanner json.loads runs on a str (its default decoder's: strict, no hooks).
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_new = object.__new__


def _decode(data: bytes) -> _FieldsProxy:
    """``_FieldsProxy(Message.decode(data))`` for Dramatiq's JSON encoder, in about half its
    CPU (a no-op message's body: 3.6 µs instead of 6.3 µs, same run): the usual body — a
    JSON object with the seven fields of a message and ``args`` a list, as Dramatiq encodes
    it — is read by the scanner ``json.loads`` itself runs (without its Python layers), and
    the message and its proxy are filled in directly, as the dataclass's ``__init__`` and
    the proxy's would fill them. Anything else (whitespace around the object, invalid JSON
    or UTF-8, a missing or unknown field, ``args`` not a list) goes through
    ``Message.decode``, which decodes it or raises its ``DecodeError``, as before."""
    try:
        text = data.decode("utf-8")
        # json.loads(text) for a text that starts with "{" and ends where the value ends.
        fields, end = _scan_json(text, 0) if text[:1] == "{" else (None, 0)
    except Exception:
        fields = None
    if (
        type(fields) is not dict
        or end != len(text)
        or fields.keys() != _MESSAGE_FIELDS
        or type(fields["args"]) is not list
    ):
        return _FieldsProxy(Message.decode(data))
    fields["args"] = tuple(fields["args"])
    message = _new(Message)
    message.__dict__.update(fields)  # the frozen dataclass's __init__ sets the same
    proxy = _new(_FieldsProxy)
    attributes = proxy.__dict__
    attributes.update(fields)
    attributes["failed"] = False  # MessageProxy.__init__
    attributes["_message"] = message
    attributes["_exception"] = None
    return proxy


class _DeadLetteringConsumer(_RedisConsumer):
    """A Redis consumer that dead-letters an undecodable message instead of dying, hands
    acknowledgements to the broker's batcher (when ``ack_batch_ms`` > 0), and waits for
    them rather than backing off while its prefetch is full (module docstring)."""

    broker: RedisBroker

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self._decoded: deque[MessageProxy] = deque()  # decoded, not handed to the worker yet
        #: Times the prefetch was full and the consumer waited for an acknowledgement.
        self.full_waits = 0
        # An ack or nack puts a token on it once at most ``_refill_at`` messages are
        # outstanding, if the consumer waits (``_waiting``): three quarters of the prefetch
        # are free again, fetched in one call (waking on every ack would mean a fetch, and a
        # rate-limit booking, a message; refilling at half cost W3 ~15 % more worker CPU a
        # job: benchmarks/README.md, "A full prefetch"). A queue in C: a threading.Event's
        # wait and set run a Condition in Python, and every such ack called set.
        self._slots_freed: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._waiting = False
        self._refill_at = prefetch // 4
        # A delay queue's messages are acknowledged by the consumer's own thread once due
        # (Dramatiq's handle_delayed_messages, between two __next__): nobody would wake it.
        self._waits_for_acks = not queue_name.endswith(".DQ")

    def _settled(self, message_id: str) -> None:
        queued = self.queued_message_ids
        queued.discard(message_id)
        # Only a waiting consumer is woken, once: it sets _waiting before it counts.
        if self._waiting and len(queued) <= self._refill_at:
            self._waiting = False
            self._slots_freed.put(None)

    def ack(self, message: Any) -> None:
        batcher = self.broker._ack_batcher
        if batcher is None:
            try:
                super().ack(message)  # type: ignore[no-untyped-call]
            finally:
                self._settled(message.message_id)
            return
        try:
            batcher.put(self.queue_name, message.options["redis_message_id"])
        finally:
            self._settled(message.message_id)

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)  # type: ignore[no-untyped-call]
        finally:
            self._settled(message.message_id)

    def close(self) -> None:
        # The acknowledgements of the messages this worker ran are written before it stops
        # (a graceful stop runs nothing twice).
        try:
            self._requeue_not_handed_out()
        finally:
            self.broker.flush_acks()
            super().close()

    def _requeue_not_handed_out(self) -> None:
        """Put the messages of a fetched batch not handed to the worker yet back on the
        queue: the worker stopped between two hand-outs. (Dramatiq's worker requeues its
        work queue; these would wait in this worker's unacknowledged set until its heartbeat
        went stale.) ``message_cache`` is always decoded before ``__next__`` returns."""
        ids = [proxy.options["redis_message_id"] for proxy in self._decoded]
        self._decoded.clear()
        if ids:
            try:
                self.broker.do_requeue(self.queue_name, *ids)
            except redis.ConnectionError as e:
                raise ConnectionClosed(e) from None  # type: ignore[no-untyped-call]

    @property
    def outstanding_message_count(self) -> int:
        return len(self.queued_message_ids) + len(self.message_cache) + len(self._decoded)

    def __next__(self) -> Any:
        # Dramatiq's __next__ (dramatiq 2.2) decodes one cached body per call; here a fetched
        # batch is decoded at once and announced to the middleware (``after_fetch``), so the
        # rate limits book its slots in one call. The backoff when nothing came is Dramatiq's.
        # While the prefetch is full Dramatiq backs off as if the queue were empty (5-10 ms,
        # then longer): here the consumer waits for acknowledgements to free 3/4 of it, at
        # most ``timeout`` ms (then returns None, as the worker's loop expects now and then),
        # and the wait is not a miss.
        try:
            while True:
                if self._decoded:
                    proxy = self._decoded.popleft()
                    self.misses = 0
                    self.queued_message_ids.add(proxy.message_id)
                    return proxy
                if self.message_cache:
                    self._decode_batch()
                    continue
                free = self.prefetch - self.outstanding_message_count
                if free > 0:
                    self.message_cache = self.broker.do_fetch(self.queue_name, free)
                    if self.message_cache:
                        continue
                elif self._waits_for_acks:
                    if self._wait_for_acks():
                        continue
                    return None
                self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                time.sleep(backoff_ms / 1000)
                return None
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None  # type: ignore[no-untyped-call]

    def _wait_for_acks(self) -> bool:
        """Wait until acknowledgements (or nacks) leave at most ``_refill_at`` messages
        outstanding; False when none came within ``timeout`` ms."""
        freed = self._slots_freed
        while not freed.empty():  # a token left by an ack after the last wait had ended
            freed.get_nowait()
        self._waiting = True  # before the count: an ack after it puts a token
        try:
            if len(self.queued_message_ids) <= self._refill_at:
                return True
            self.full_waits += 1
            try:
                freed.get(timeout=self.timeout / 1000)
            except queue.Empty:
                return False
            return True
        finally:
            self._waiting = False

    def _decode_batch(self) -> None:
        """Decode the fetched bodies into proxies (an undecodable one is dead-lettered),
        then emit ``after_fetch`` with them; a delay queue's are marked, not announced (they
        are not run here, only enqueued again when due)."""
        bodies, self.message_cache = self.message_cache, []
        delayed = self.queue_name.endswith(".DQ")
        # Dramatiq's JSON encoder (the default) has a fast path; any other, its own decode.
        decode = _decode if type(_dramatiq_message.global_encoder) is JSONEncoder else None
        batch: list[MessageProxy] = []
        for data in bodies:
            if data is None:  # as Dramatiq: a body gone between fetch and read
                continue
            try:
                proxy = decode(data) if decode else _FieldsProxy(Message.decode(data))
            except DecodeError as exc:
                self._dead_letter(exc)
                continue
            if delayed:
                proxy.options[FROM_DELAY_QUEUE] = True
            batch.append(proxy)
        if batch and not delayed:
            self.broker.emit_after("fetch", batch)
        self._decoded.extend(batch)

    def _dead_letter(self, exc: DecodeError) -> None:
        broker = self.broker
        client = broker.client
        data = exc.data
        acks = acks_key(broker.namespace, broker.broker_id, self.queue_name)
        bodies = messages_key(broker.namespace, self.queue_name)
        candidates = sorted(client.smembers(acks))
        found = client.hmget(bodies, candidates) if candidates else []
        matches = [c for c, body in zip(candidates, found, strict=True) if body == data]
        preview = repr(data)[:PREVIEW_CHARS]
        if not matches:  # already handled elsewhere (another worker's sweep): nothing to do
            logger.error("undecodable_message_not_found", queue=self.queue_name, body=preview)
            return
        message_id = matches[0].decode() if isinstance(matches[0], bytes) else str(matches[0])
        broker.do_nack(self.queue_name, message_id)
        self.queued_message_ids.discard(message_id)
        proxy = MessageProxy(
            Message(
                queue_name=self.queue_name,
                actor_name=UNDECODABLE_ACTOR,
                args=(),
                kwargs={},
                options={"redis_message_id": message_id, "undecodable_body": preview},
                message_id=message_id,
            )
        )
        error = DecodeError(  # type: ignore[no-untyped-call]
            f"the body of message {message_id} on {self.queue_name!r} is not a Dramatiq "
            f"message ({type(exc.error).__name__}: {exc.error}); first bytes: {preview}",
            data,
            exc.error,
        )
        proxy.stuff_exception(error)
        proxy.fail()
        logger.error(
            "undecodable_message",
            message_id=message_id,
            queue=self.queue_name,
            error=f"{type(exc.error).__name__}: {exc.error}",
        )
        broker.emit_after("nack", proxy)


class RedisBroker(SelectingEmitter, _DramatiqRedisBroker):
    """Dramatiq's ``RedisBroker`` whose consumers dead-letter undecodable messages, and
    whose hooks skip the middleware that do not implement them or cannot act on the message
    (:class:`~gcmc_jobs.brokers.hooks.SelectingEmitter`: per signal, and for the per-message
    hooks per shape of message, cached until the middleware list changes or an actor is
    declared).

    Its middleware list starts with a :class:`~gcmc_jobs.brokers.work_queue.WorkQueues`:
    when a Dramatiq ``Worker`` boots on it (``before_worker_boot``, before any of its
    threads exist), the worker gets a :class:`~gcmc_jobs.brokers.work_queue.WorkQueue` in
    place of its ``queue.PriorityQueue``: the hand-off between its consumer and worker
    threads on C-level locks; each of its consumer threads gets one as its ``delay_queue``
    when it boots (``after_consumer_thread_boot``).

    Its commands (fetch, ack, nack, enqueue: Dramatiq's one ``dispatch`` Lua script, with
    Dramatiq's arguments) are sent with a :class:`~gcmc_jobs.redis_scripts.ScriptRunner`,
    which halves redis-py's client CPU per call; the ack of every message is one of them.
    """

    _dispatch_runner: ScriptRunner  # made on first use: Dramatiq's __init__ dispatches

    def __init__(self, *, ack_batch_ms: int = DEFAULT_ACK_BATCH_MS, **options: Any) -> None:
        """Dramatiq's ``RedisBroker(url=..., namespace=..., ...)``, plus ``ack_batch_ms``:
        a worker's acknowledgements are gathered this long and written in one Lua call per
        queue (``ACK_MANY_LUA``) by a background thread, instead of one round trip each in
        the worker thread that ran the message (0: Dramatiq's one at a time). ``middleware``
        (None: Dramatiq's default stack) gets a ``WorkQueues`` first.

        Delivery stays at least once: a message is acknowledged only after it ran; a worker
        killed before its batch was written leaves those messages unacknowledged, and they
        run again once its heartbeat is stale (README "Guarantees"), like a kill between an
        actor's return and its acknowledgement always did. A graceful stop writes the batch
        first (the consumer's ``close``)."""
        if ack_batch_ms < 0:
            raise ValueError(f"ack_batch_ms must be >= 0 (0: no batching), not {ack_batch_ms}")
        self.ack_batch_ms = ack_batch_ms
        self._ack_batcher = (
            _AckBatcher(self._ack_many, wait_ms=ack_batch_ms) if ack_batch_ms > 0 else None
        )
        options["middleware"] = with_work_queues(options.get("middleware"))
        super().__init__(**options)  # type: ignore[no-untyped-call]

    def _ack_many(self, queue_name: str, redis_message_ids: list[str]) -> None:
        runner = self.__dict__.get("_ack_runner")
        if runner is None:
            script = self.client.register_script(ACK_MANY_LUA)
            runner = self.__dict__["_ack_runner"] = ScriptRunner(self.client, script)
        keys = [
            heartbeats_key(self.namespace),
            acks_key(self.namespace, self.broker_id, queue_name),
            messages_key(self.namespace, queue_name),
        ]
        runner(keys, [current_millis(), self.broker_id, *redis_message_ids])

    def flush_acks(self, timeout: float = 30) -> bool:
        """Write the acknowledgements gathered so far and wait for them (True), or give up
        after ``timeout`` seconds with Redis down (False: they stay queued and retried)."""
        return self._ack_batcher.flush(timeout) if self._ack_batcher is not None else True

    def close(self) -> None:
        self.flush_acks()
        super().close()

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Dramatiq's enqueue; when Redis fails to write the message, the dedup key its
        ``before_enqueue`` claimed is released before the error propagates
        (:func:`~gcmc_jobs.brokers.bulk.release_unsent`). A delayed message falling due
        is written by :meth:`_enqueue_due` (see the module docstring)."""
        if delay is None and FROM_DELAY_QUEUE in message.options:
            return self._enqueue_due(message)
        try:
            return super().enqueue(message, delay=delay)
        except MiddlewareError:
            raise  # a hook refused it (a duplicate): no claim of its own to release
        except Exception:
            release_unsent(self, [message])
            raise

    def _enqueue_due(self, message: Message[Any]) -> Message[Any]:
        """Write the ready copy of a delayed message that fell due, unless its delayed body
        was taken out of ``<queue>.DQ.msgs`` (cancelled, or promoted already): one Lua call
        (:data:`DUE_LUA`) that removes the delayed body and writes the ready one."""
        options = dict(message.options)
        delayed_id = options.pop(FROM_DELAY_QUEUE) and options.get("redis_message_id")
        options["redis_message_id"] = str(uuid4())
        ready: Message[Any] = Message(**{**message.asdict(), "options": options})
        queue = ready.queue_name
        self.emit_before("enqueue", ready, None)
        runner = self.__dict__.get("_due_runner")
        if runner is None:
            runner = self.__dict__["_due_runner"] = ScriptRunner(
                self.client, self.client.register_script(DUE_LUA)
            )
        keys = [
            messages_key(self.namespace, dq_name(queue)),
            queue_key(self.namespace, queue),
            messages_key(self.namespace, queue),
        ]
        # On an error the delayed message stays in Redis (unacknowledged, requeued when this
        # worker goes away): its dedup claim is kept, unlike a send that failed.
        moved = runner(keys, [str(delayed_id), options["redis_message_id"], ready.encode()])
        if not moved:
            logger.info(
                "delayed_message_dropped",
                message_id=ready.message_id,
                actor=ready.actor_name,
                queue=queue,
                reason="cancelled or promoted while a worker held it",
            )
            return ready
        self.emit_after("enqueue", ready, None)
        return ready

    def _dispatch(self, command: str) -> Any:
        # Dramatiq's _dispatch (dramatiq 2.2), only the transport changed.
        runner = self.__dict__.get("_dispatch_runner")
        if runner is None:
            runner = self.__dict__["_dispatch_runner"] = ScriptRunner(
                self.client, self.scripts["dispatch"]
            )
        keys = [self.namespace]

        def do_dispatch(queue_name: str, *args: Any) -> Any:
            return runner(
                keys,
                [
                    command,
                    current_millis(),
                    queue_name,
                    self.broker_id,
                    self.heartbeat_timeout,
                    self.dead_message_ttl,
                    self._should_do_maintenance(command),
                    self._max_unpack_size(),  # type: ignore[no-untyped-call]
                    *args,
                ],
            )

        return do_dispatch

    def forget_dead_message(self, message: Any) -> None:
        """Remove ``message`` from its queue's dead-letter queue (``<queue>.XQ`` and its
        ``.XQ.msgs`` body): called once the dead-letter store holds it, so the broker's
        queue holds a dead message only while the store could not take it. One ``MULTI``
        of ``ZREM`` and ``HDEL``; nothing when the message is not there."""
        redis_id = message.options.get("redis_message_id")
        if redis_id is None:
            return
        dead = dead_queue_key(self.namespace, q_name(message.queue_name))
        pipeline = self.client.pipeline(transaction=True)
        pipeline.zrem(dead, redis_id)
        pipeline.hdel(f"{dead}.msgs", redis_id)
        pipeline.execute()

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _DeadLetteringConsumer

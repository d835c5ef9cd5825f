"""Enqueue many Dramatiq messages at once: pipelined on Redis, a loop elsewhere.

Dramatiq has no bulk enqueue: ``send()`` and ``group().run()`` make one ``EVALSHA`` round
trip per message (~4,700 messages/s on loopback). :func:`enqueue_many` keeps everything a
``RedisBroker.enqueue`` does per message — a fresh ``redis_message_id``, the ``eta`` and
``.DQ`` queue of a delayed message, the ``before_enqueue``/``after_enqueue`` hooks of every
middleware (a middleware's batched ``before_enqueue_many``/``after_enqueue_many`` instead,
once per chunk, when it has them), the same encoded message in the same keys — but writes
the messages in a few round trips:

- ``strategy="batched"`` (default): per chunk, one ``MULTI`` with one ``HSET
  <ns>:<queue>.msgs id data …`` and one ``RPUSH <ns>:<queue> id …`` per queue; exactly the
  two writes of Dramatiq's ``dispatch.lua`` ``enqueue`` command, atomically, for the chunk.
  (The script's other effects are the producer's heartbeat and a random chance of queue
  maintenance, which the broker's next ordinary call performs anyway.) The transaction is
  packed here and written in one send on a connection of the client's pool, not through
  redis-py's pipeline, which encodes each argument in Python (~4 µs each here).
- ``strategy="dispatch"``: Dramatiq's own ``dispatch`` script, one call per message, queued
  on a pipeline (``script(keys=…, args=…, client=pipeline)``): byte-for-byte Dramatiq's path,
  about 4 times one-by-one.

A middleware with ``enqueue_many_in(broker, transaction, messages, delay)`` adds its writes
for a chunk to the chunk's ``MULTI`` (``strategy="batched"``) and returns True; its
after-enqueue hooks are then not called for that chunk. ``StatusTracking`` writes the
chunk's status records so (when its store is on the broker's Redis): no round trip of
their own, in place when the messages are. A command added with ``transaction.optional``
fails only itself: its error goes to its handler, the chunk counts as written. A script its
commands call with ``EVALSHA`` is loaded with ``transaction.load_script`` (``SCRIPT LOAD``
in the same write, before the first ``MULTI`` of the call that needs it).

Deduplication stays pipelined too: when the broker carries a middleware with
``claim_many(broker, messages) -> list[bool]`` (gcmc-jobs' ``Deduplication``), every key is claimed
in one call first and the losers are dropped (counted in :attr:`BulkResult.duplicates`);
the winners' ``before_enqueue`` then needs no round trip. On other brokers (RabbitMQ, the
stub) the messages go through ``broker.enqueue`` one by one.

When writing fails (the broker is down, a hook stops the call), the keys claimed for the
messages that were not written are released (:func:`release_unsent`) before the error
propagates: a claimed key of an unwritten message would drop every later send of that key
(the next tick's run) for the whole dedup TTL. ``bulk.enqueue_failed`` logs what was not
written; ``StructuredLogging``'s ``enqueued_many`` event is logged only for written
chunks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import json.encoder
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dramatiq
import dramatiq.message as dramatiq_message
from dramatiq.common import current_millis, dq_name
from dramatiq.encoder import JSONEncoder
from dramatiq.middleware import MiddlewareError

from gcmc_jobs.brokers.hooks import SelectingEmitter, implementing
from gcmc_jobs.errors import DuplicateMessage
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.redis_keys import messages_key, queue_key
from gcmc_jobs.redis_scripts import pack_command

__all__ = ["BulkResult", "enqueue_many", "release_unsent"]

log = get_logger("gcmc_jobs.brokers.bulk")

#: The fields :func:`_encode_json` writes, in order: Dramatiq's ``Message`` fields (checked).
_FIELDS = (
    "queue_name",
    "actor_name",
    "args",
    "kwargs",
    "options",
    "message_id",
    "message_timestamp",
)
_DATACLASS_FIELDS = tuple(f.name for f in dataclasses.fields(dramatiq.Message))

#: Messages written per Redis round trip.
DEFAULT_CHUNK_SIZE = 1_000

#: ``also(pipeline, messages)``: more writes for a chunk's transaction (see ``enqueue_many``).
Also = Callable[[Any, Sequence[dramatiq.Message[Any]]], None]


@dataclass
class BulkResult:
    """What :func:`enqueue_many` did: the enqueued messages (as the broker stored them)
    and how many were dropped as duplicates of a pending or recent message."""

    enqueued: list[dramatiq.Message[Any]] = field(default_factory=list)
    duplicates: int = 0


def _claimer(broker: dramatiq.Broker) -> Any | None:
    for middleware in broker.middleware:
        if callable(getattr(middleware, "claim_many", None)):
            return middleware
    return None


def release_unsent(broker: dramatiq.Broker, messages: Sequence[dramatiq.Message[Any]]) -> None:
    """Release the dedup keys ``messages`` claimed but were never written, on the broker's
    deduplicating middleware (if any). A failure to release is logged, never raised: the
    caller is already handling the enqueue's own error."""
    claimer = _claimer(broker)
    if claimer is None or not messages or not callable(getattr(claimer, "release_unsent", None)):
        return
    try:
        claimer.release_unsent(broker, messages)
    except Exception as exc:
        log.error(
            "bulk.release_failed",
            messages=len(messages),
            error=f"{type(exc).__name__}: {exc}",
            note="their dedup keys stay claimed until the dedup TTL",
        )


def _is_redis(broker: dramatiq.Broker) -> bool:
    """Whether ``broker`` is a Dramatiq ``RedisBroker`` (ours or Dramatiq's). Checked without
    importing ``dramatiq.brokers.redis``, so that importing this module keeps ``import
    gcmc_jobs`` light (``tests/test_imports.py``): when that module is not loaded, no Redis
    broker exists."""
    module = sys.modules.get("dramatiq.brokers.redis")
    return module is not None and isinstance(broker, module.RedisBroker)


def _is_duplicate(error: BaseException) -> bool:
    return isinstance(error, DuplicateMessage)


class _GcPause:
    """Pauses Python's cyclic garbage collector while any :func:`enqueue_many` runs in the
    process, and restores it after the last one (if it was enabled when the first began).

    A bulk enqueue keeps every message it writes (``BulkResult.enqueued``): tens of thousands
    of new containers, each few hundred of which start a collection that walks ever more
    live objects: 50,000 no-op messages spent 40-50 % of enqueue_many's CPU there. What a
    bulk enqueue discards is freed by reference counting (no cycles); the collector resumes,
    with its usual thresholds, as soon as the call returns (or raises). The pause is
    process-wide: other threads' cyclic garbage waits until then too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callers = 0
        self._was_enabled = False
        os.register_at_fork(after_in_child=self._after_fork)

    def __enter__(self) -> None:
        with self._lock:
            if self._callers == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._callers += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._callers -= 1
            if self._callers == 0 and self._was_enabled:
                gc.enable()

    def _after_fork(self) -> None:
        # A child forked during a call has no caller to resume the collector.
        self._lock = threading.Lock()
        if self._callers and self._was_enabled:
            gc.enable()
        self._callers = 0


_GC_PAUSE = _GcPause()


def enqueue_many(
    broker: dramatiq.Broker,
    messages: Iterable[dramatiq.Message[Any]],
    *,
    delay: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    strategy: Literal["batched", "dispatch"] = "batched",
    also: Also | None = None,
) -> BulkResult:
    """Enqueue ``messages`` on ``broker`` in bulk; ``delay`` in ms applies to all.

    ``also(pipeline, messages)``, on a Redis broker, adds writes to each chunk with the
    chunk's messages (as stored), through redis-py's command methods (``pipeline.set(…)``,
    ``pipeline.eval(…)``; their results are not returned); with ``strategy="batched"`` they
    commit in the same ``MULTI`` as the messages, atomically (the outbox relay writes its
    relay keys so). Other brokers never call it.

    Hooks: a middleware with ``before_enqueue_many(broker, messages, delay)`` (returns the
    messages that go on, or None for all) or ``after_enqueue_many(broker, messages, delay)``
    is called once per chunk instead of its per-message ``before_enqueue``/``after_enqueue``
    (gcmc-jobs' ``Deduplication``, ``StructuredLogging``, ``Metrics``, ``StatusTracking``);
    the others' per-message hooks run as before. In stack order, on a broker whose
    ``emit_*`` are Dramatiq's or gcmc-jobs' ``RedisBroker``'s (another keeps its own, per
    message).

    Messages are built with ``actor.message(...)`` / ``actor.message_with_options(...)``
    (validated there, as ``send`` would). A ``MiddlewareError`` other than a duplicate,
    raised by a ``before_enqueue`` hook, stops the call after the messages before it are
    written: nothing accepted is lost.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    with _GC_PAUSE:
        return _enqueue_many(broker, messages, delay, chunk_size, strategy, also)


def _enqueue_many(
    broker: dramatiq.Broker,
    messages: Iterable[dramatiq.Message[Any]],
    delay: int | None,
    chunk_size: int,
    strategy: Literal["batched", "dispatch"],
    also: Also | None,
) -> BulkResult:
    pending = list(messages)
    result = BulkResult()
    loaded: set[str] = set()  # the Lua scripts this call's transactions loaded
    claimer = _claimer(broker)
    if claimer is not None and pending:
        flags: Sequence[bool] = claimer.claim_many(broker, pending)
        result.duplicates += sum(1 for won in flags if not won)
        pending = [message for message, won in zip(pending, flags, strict=True) if won]

    try:
        if not _is_redis(broker):
            for message in pending:
                try:
                    result.enqueued.append(broker.enqueue(message, delay=delay))
                except MiddlewareError as exc:
                    if not _is_duplicate(exc):
                        raise
                    result.duplicates += 1
            return result
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            _redis_chunk(broker, chunk, delay, strategy, result, also, loaded)
    except BaseException as exc:
        written = {message.message_id for message in result.enqueued}
        unsent = [message for message in pending if message.message_id not in written]
        release_unsent(broker, unsent)
        log.error(
            "bulk.enqueue_failed",
            enqueued=len(result.enqueued),
            not_enqueued=len(unsent),
            duplicates=result.duplicates,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    return result


#: A step of a chunk's ``before_enqueue`` hooks: ``("each", hooks)``, consecutive per-message
#: hooks run message by message, or ``("many", hook)``, one middleware's batched hook.
Step = tuple[Literal["each", "many"], Any]

#: The ``emit_before``/``emit_after`` of brokers whose only change to Dramatiq's, for the
#: enqueue hooks, is the filter of :func:`~gcmc_jobs.brokers.hooks.implementing` (gcmc-jobs'
#: brokers' :class:`~gcmc_jobs.brokers.hooks.SelectingEmitter`: its per-shape selection
#: concerns only the per-message hooks): :func:`enqueue_many` may then call the middleware's
#: enqueue hooks itself.
PLAIN_EMITTERS: set[Any] = {
    dramatiq.Broker.emit_before,
    dramatiq.Broker.emit_after,
    SelectingEmitter.emit_before,
    SelectingEmitter.emit_after,
}


def _plain(broker: dramatiq.Broker) -> bool:
    cls = type(broker)
    return cls.emit_before in PLAIN_EMITTERS and cls.emit_after in PLAIN_EMITTERS


def _before_steps(broker: dramatiq.Broker) -> list[Step]:
    """The ``before_enqueue`` hooks of a chunk, in stack order: a middleware with a
    ``before_enqueue_many`` is called once with the chunk, the others once per message
    (consecutive ones message by message, as ``emit_before`` would). A broker that overrides
    ``emit_before`` otherwise keeps its own, once per message."""
    if not _plain(broker):
        emit = broker.emit_before
        return [("each", (lambda b, message, delay: emit("enqueue", message, delay),))]
    steps: list[Step] = []
    for middleware in broker.middleware:
        many = getattr(middleware, "before_enqueue_many", None)
        if callable(many):
            steps.append(("many", many))
            continue
        hooks = implementing([middleware], "before_enqueue")
        if not hooks:
            continue
        if steps and steps[-1][0] == "each":
            steps[-1] = ("each", (*steps[-1][1], *hooks))
        else:
            steps.append(("each", hooks))
    return steps


def _after_steps(broker: dramatiq.Broker) -> list[Step]:
    """The ``after_enqueue`` hooks of a chunk, in reverse stack order (as ``emit_after``):
    ``after_enqueue_many`` once with the written messages, else ``after_enqueue`` per
    message."""
    if not _plain(broker):
        emit = broker.emit_after
        return [("each", (lambda b, message, delay: emit("enqueue", message, delay),))]
    steps: list[Step] = []
    for middleware in reversed(broker.middleware):
        many = getattr(middleware, "after_enqueue_many", None)
        if callable(many):
            steps.append(("many", many))
        else:
            steps.extend(("each", (hook,)) for hook in implementing([middleware], "after_enqueue"))
    return steps


def _unexpected(broker: dramatiq.Broker, hook: Any) -> None:
    broker.logger.critical(
        "Unexpected failure in %s of %r.",
        getattr(hook, "__name__", hook),
        getattr(hook, "__self__", None),
        exc_info=True,
    )


def _run_before(
    broker: dramatiq.Broker,
    steps: list[Step],
    chunk: list[dramatiq.Message[Any]],
    delay: int | None,
    result: BulkResult,
) -> tuple[list[dramatiq.Message[Any]], MiddlewareError | None]:
    """Run a chunk's ``before_enqueue`` steps; returns the messages to write and the
    ``MiddlewareError`` (not a duplicate) that stops the call, if any.

    Per message, as Dramatiq's ``emit_before``: a duplicate drops the message, another
    ``MiddlewareError`` keeps the messages before it and stops, any other error is logged
    and ignored. A batched hook returns the messages that go on (``None``: all of them; the
    ones it leaves out are counted as duplicates); a ``MiddlewareError`` from it stops the
    call before any message of the chunk is written."""
    survivors = chunk
    error: MiddlewareError | None = None
    for kind, hook in steps:
        if not survivors:
            break
        if kind == "many":
            try:
                kept = hook(broker, survivors, delay)
            except MiddlewareError as exc:
                return [], exc
            except Exception:
                _unexpected(broker, hook)
                continue
            if kept is not None:
                kept = list(kept)
                result.duplicates += len(survivors) - len(kept)
                survivors = kept
            continue
        kept = []
        for message in survivors:
            try:
                for each in hook:
                    try:
                        each(broker, message, delay)
                    except MiddlewareError:
                        raise
                    except Exception:
                        _unexpected(broker, each)
            except MiddlewareError as exc:
                if _is_duplicate(exc):
                    result.duplicates += 1
                    continue
                error = exc  # the messages before it go on through the next steps
                break
            kept.append(message)
        survivors = kept
    return survivors, error


def _run_after(
    broker: dramatiq.Broker,
    steps: list[Step],
    written: list[dramatiq.Message[Any]],
    delay: int | None,
) -> None:
    for kind, hook in steps:
        if kind == "many":
            try:
                hook(broker, written, delay)
            except Exception:
                _unexpected(broker, hook)
            continue
        for message in written:
            for each in hook:
                try:
                    each(broker, message, delay)
                except Exception:
                    _unexpected(broker, each)


def _with_options(message: dramatiq.Message[Any], **options: Any) -> dramatiq.Message[Any]:
    """``message.copy(options=…)`` without ``dataclasses.replace``'s per-call introspection
    and, for Dramatiq's own ``Message`` class, without its frozen ``__init__`` (a
    ``object.__setattr__`` per field, half of this copy's cost): the fields are copied as
    they are (``args`` is already the tuple ``__post_init__`` made)."""
    if type(message) is dramatiq.Message:
        copied: dramatiq.Message[Any] = object.__new__(dramatiq.Message)
        state = copied.__dict__
        state.update(message.__dict__)
        state["options"] = {**message.options, **options}
        return copied
    return dramatiq.Message(
        queue_name=message.queue_name,
        actor_name=message.actor_name,
        args=message.args,
        kwargs=message.kwargs,
        options={**message.options, **options},
        message_id=message.message_id,
        message_timestamp=message.message_timestamp,
    )


@functools.cache
def _transaction_class() -> type[Any]:
    """:class:`_Transaction`'s class, made on first use: redis-py is imported only where a
    Redis broker exists (``import gcmc_jobs`` stays light, ``tests/test_imports.py``)."""
    from redis.commands.core import CoreCommands
    from redis.exceptions import ResponseError

    class _Transaction(CoreCommands):
        """The commands of a chunk's ``MULTI``, recorded through redis-py's command methods
        (``hset``, ``eval``, ``set``, …: what ``also`` may call; they return nothing) and
        sent by :meth:`run` packed by :func:`~gcmc_jobs.redis_scripts.pack_command`:
        redis-py's pipeline encodes every argument in Python, ~4 µs each here, and a chunk
        of 1,000 messages is 3,000 and more arguments."""

        _event_dispatcher: Any = None

        def __init__(self, loaded: set[str] | None = None) -> None:
            self.commands: list[tuple[Any, ...]] = []
            #: index of a command -> what to call with its error instead of raising it
            self.on_error: dict[int, Callable[[Exception], None]] = {}
            #: the Lua scripts sent with ``SCRIPT LOAD`` ahead of this chunk's ``MULTI``
            self.scripts: list[str] = []
            # those the earlier chunks of the same enqueue_many call loaded
            self._loaded = set() if loaded is None else loaded

        def execute_command(self, *args: Any, **options: Any) -> None:
            self.commands.append(args)

        def optional(self, on_error: Callable[[Exception], None], *args: Any) -> None:
            """Add a command whose failure inside ``EXEC`` is passed to ``on_error``
            instead of failing the transaction (the messages are written all the same:
            status records). Refused when queued, it still aborts them all."""
            self.on_error[len(self.commands)] = on_error
            self.commands.append(args)

        def load_script(self, script: str) -> None:
            """Load ``script`` (``SCRIPT LOAD``, in the same write, ahead of the ``MULTI``)
            unless an earlier chunk of the same :func:`enqueue_many` call did: commands may
            then call it with ``EVALSHA`` (a ``NOSCRIPT`` inside ``EXEC`` cannot be
            recovered). Loaded again by each call, so a Redis restarted or flushed between
            two calls has it; its reply is not checked (a failed load fails the commands
            that call the script, inside ``EXEC``)."""
            if script not in self._loaded and script not in self.scripts:
                self.scripts.append(script)

        def run(self, client: Any) -> None:
            """``MULTI``, the commands, ``EXEC`` in one write on a connection of
            ``client``'s pool; raises the first error (a command refused when queued
            aborts them all). No retry: after a lost reply the writes may have been
            applied, and the caller decides (the outbox relay's keys tell). The connection
            is dropped after any error."""
            pool = client.connection_pool
            connection = pool.get_connection()
            failed: list[tuple[int, ResponseError]] = []
            try:
                connection.send_packed_command(
                    [
                        *(pack_command("SCRIPT", "LOAD", script) for script in self.scripts),
                        pack_command("MULTI"),
                        *(pack_command(*command) for command in self.commands),
                        pack_command("EXEC"),
                    ]
                )
                for script in self.scripts:
                    # its SHA1; a failed load fails the script's EVALSHA, inside EXEC, and
                    # the next chunk loads it again
                    with contextlib.suppress(ResponseError):
                        connection.read_response()
                        self._loaded.add(script)
                queued: list[ResponseError] = []
                for _ in range(len(self.commands) + 1):  # +OK, then +QUEUED each
                    try:
                        connection.read_response()
                    except ResponseError as exc:
                        queued.append(exc)
                try:
                    replies = connection.read_response()
                except ResponseError:
                    if queued:
                        raise queued[0] from None
                    raise
                failed += [
                    (index, reply)
                    for index, reply in enumerate(replies)
                    if isinstance(reply, ResponseError)
                ]
                for index, reply in failed:
                    if index not in self.on_error:
                        raise reply
            except BaseException:
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
            for index, reply in failed:  # the transaction is written: never raise from here
                try:
                    self.on_error[index](reply)
                except Exception as exc:
                    log.error("bulk.on_error_failed", error=f"{type(exc).__name__}: {exc}")

    return _Transaction


def _in_transaction(
    broker: dramatiq.Broker,
    transaction: Any,
    messages: list[dramatiq.Message[Any]],
    delay: int | None,
) -> set[int]:
    """Let each middleware with ``enqueue_many_in(broker, transaction, messages, delay)``
    add its writes for the chunk to the chunk's ``MULTI`` (``StatusTracking``'s records);
    returns the ``id()`` of those that did (returned True): their after-enqueue hooks are
    not called for the chunk. Only on a broker whose hooks :func:`enqueue_many` calls
    itself."""
    done: set[int] = set()
    if not _plain(broker):
        return done
    for middleware in broker.middleware:
        hook = getattr(middleware, "enqueue_many_in", None)
        if not callable(hook):
            continue
        try:
            if hook(broker, transaction, messages, delay):
                done.add(id(middleware))
        except Exception:
            _unexpected(broker, hook)
    return done


def _owned_by(step: Step, middleware_ids: set[int]) -> bool:
    hooks = (step[1],) if step[0] == "many" else step[1]
    return any(id(getattr(hook, "__self__", None)) in middleware_ids for hook in hooks)


#: Dramatiq's default encoder's ``json.dumps(data, separators=(",", ":"))``, made once.
_JSON = json.JSONEncoder(separators=(",", ":"))

#: What ``_JSON.encode`` builds on every call (C's encoder, when this Python has it), made
#: once: without the circular-reference check (``markers=None``), whose dict would be shared
#: by the threads; a circular argument fails with ``RecursionError`` instead of
#: ``ValueError``, before anything of its chunk is written.
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)  # untyped: CPython's C part
_C_ENCODE = (
    None
    if _C_MAKE_ENCODER is None
    else _C_MAKE_ENCODER(
        None,
        _JSON.default,
        json.encoder.encode_basestring_ascii,
        None,
        _JSON.key_separator,
        _JSON.item_separator,
        _JSON.sort_keys,
        _JSON.skipkeys,
        _JSON.allow_nan,
    )
)


def _encode_json(message: dramatiq.Message[Any]) -> bytes:
    """``message.encode()`` with Dramatiq's ``JSONEncoder``, byte for byte (the same dict,
    in the dataclass's field order, and the same JSON settings) without its per-call
    ``dataclasses.fields``, ``json.dumps`` encoder and C encoder construction."""
    data = {
        "queue_name": message.queue_name,
        "actor_name": message.actor_name,
        "args": message.args,
        "kwargs": message.kwargs,
        "options": message.options,
        "message_id": message.message_id,
        "message_timestamp": message.message_timestamp,
    }
    if _C_ENCODE is None:
        return _JSON.encode(data).encode("utf-8")
    return "".join(_C_ENCODE(data, 0)).encode("utf-8")


def _encoder() -> Callable[[dramatiq.Message[Any]], bytes]:
    """How to encode a message: :func:`_encode_json` when the global encoder is Dramatiq's
    own ``JSONEncoder`` (not a subclass), else ``message.encode``."""
    if type(dramatiq_message.global_encoder) is JSONEncoder and _FIELDS == _DATACLASS_FIELDS:
        return _encode_json
    return dramatiq.Message.encode


def _redis_chunk(
    broker: Any,
    chunk: list[dramatiq.Message[Any]],
    delay: int | None,
    strategy: str,
    result: BulkResult,
    also: Also | None = None,
    loaded: set[str] | None = None,
) -> None:
    prepared: list[dramatiq.Message[Any]] = []
    # A fresh redis_message_id per message, as RedisBroker.enqueue's str(uuid4()): 128 random
    # bits too, as 32 hex digits, one os.urandom call per chunk (uuid4() was 12 % of a chunk).
    random = os.urandom(16 * len(chunk)).hex()
    for index, original in enumerate(chunk):
        redis_id = random[32 * index : 32 * index + 32]
        message = _with_options(original, redis_message_id=redis_id)
        if delay is not None:
            queue_name = dq_name(message.queue_name)
            message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})
        prepared.append(message)
    accepted, error = _run_before(broker, _before_steps(broker), prepared, delay, result)
    ready = [(message.queue_name, message) for message in accepted]

    if ready:
        if strategy == "batched":
            transaction = _transaction_class()(loaded)
            by_queue: dict[str, list[dramatiq.Message[Any]]] = {}
            for queue_name, message in ready:
                by_queue.setdefault(queue_name, []).append(message)
            for queue_name, queued in by_queue.items():
                fields: list[Any] = [messages_key(broker.namespace, queue_name)]
                ids: list[Any] = [queue_key(broker.namespace, queue_name)]
                encode = _encoder()
                for message in queued:
                    fields += (message.options["redis_message_id"], encode(message))
                    ids.append(message.options["redis_message_id"])
                transaction.execute_command("HSET", *fields)
                transaction.execute_command("RPUSH", *ids)
            if also is not None:
                also(transaction, [message for _, message in ready])
            done = _in_transaction(broker, transaction, [message for _, message in ready], delay)
            transaction.run(broker.client)
        else:
            done = set()
            pipeline = broker.client.pipeline(transaction=False)
            dispatch = broker.scripts["dispatch"]
            unpack = broker._max_unpack_size()
            for queue_name, message in ready:
                args = [
                    "enqueue",
                    current_millis(),
                    queue_name,
                    broker.broker_id,
                    broker.heartbeat_timeout,
                    broker.dead_message_ttl,
                    0,
                    unpack,
                    message.options["redis_message_id"],
                    message.encode(),
                ]
                dispatch(keys=[broker.namespace], args=args, client=pipeline)
            if also is not None:
                also(pipeline, [message for _, message in ready])
            pipeline.execute()
        written = [message for _, message in ready]
        steps = _after_steps(broker)
        if done:
            steps = [step for step in steps if not _owned_by(step, done)]
        _run_after(broker, steps, written, delay)
        result.enqueued.extend(written)
    if error is not None:
        raise error

"""Every private name of Dramatiq (and Typer) gcmc-jobs relies on, checked against the
installed release, so that a release which renames or changes one fails here, loudly, and not
in a worker. ``pyproject.toml`` pins ``dramatiq`` to the range this file passed on (2.2.x):
widen the pin only after this file passes on the new release.

==========================================  =============================================
private name                                where gcmc-jobs relies on it
==========================================  =============================================
``dramatiq.brokers.redis._RedisConsumer``    subclassed (``brokers.redis_broker``): its
                                             ``__init__``, ``broker``, ``queue_name``,
                                             ``prefetch``, ``timeout``, ``misses``,
                                             ``message_cache`` (the bodies ``do_fetch``
                                             returns), ``queued_message_ids``; our
                                             ``__next__`` replaces its ``__next__`` (which
                                             raises ``DecodeError``: ``.data``, ``.error``)
``RedisBroker.consumer_class``               overridden; ``consume()`` must build it
``RedisBroker._dispatch(command)``           overridden: returns a callable taking
                                             ``(queue_name, *args)``; the ``do_<command>``
                                             attributes go through it
``RedisBroker._max_unpack_size()``           called (our dispatch, bulk ``dispatch``)
``RedisBroker._should_do_maintenance(cmd)``  called (our dispatch)
``RedisBroker.scripts["dispatch"]``          run ourselves: its commands and argument
                                             order, and the Redis key names it writes
                                             (``gcmc_jobs.redis_keys``)
``MessageProxy._exception``                  read by ``DeadLetters`` / ``StructuredLogging``
                                             (the error of a failed message)
``dramatiq.broker.global_broker``            read by ``gcmc_jobs.configured`` to restore it
``Worker.work_queue``,                       replaced on ``before_worker_boot``
``dramatiq.worker._WorkQueueItem``,          (``brokers.work_queue``): emitted before any
``ConsumerThread.delay_queue``               thread exists, the threads take the queue from
                                             the worker; items carry ``priority`` and
                                             ``message``; the queue is used through ``put``,
                                             ``get(timeout=)``, ``get_nowait``, ``task_done``,
                                             ``join``, ``unfinished_tasks``; a consumer
                                             thread's ``delay_queue`` is replaced on
                                             ``after_consumer_thread_boot``, which the thread
                                             emits before it consumes
``middleware.time_limit.``                   ``brokers.defaults.TimeLimit`` writes a thread's
``_CtypesTimeoutManager``: ``deadlines``,    deadline into ``deadlines`` itself once the
``add_timeout``, ``remove_timeout``;         thread has its entry, and reads the manager
``TimeLimit.manager``                        ``TimeLimit.__init__`` assigns
``middleware.shutdown.``                     ``brokers.defaults.ShutdownNotifications`` adds
``_CtypesShutdownManager.notifications``;    and discards the thread's id itself
``ShutdownNotifications.manager``
``CurrentMessage._MESSAGE``                  set by ``brokers.defaults.CurrentMessage``
                                             (a ``ContextVar``)
``typer._click.globals.get_current_context`` the CLI's running command (``cli._app``)
``typer.core._TyperParameter``:              preset by ``cli._coercion`` (a stand-in that
``_runtime_param``, ``type_descriptor``;     builds Typer's own coercion for a value that
``typer._coercion.RuntimeParam``,            needs one): ``process_value`` coerces through a
``build_runtime_param``                      preset ``_runtime_param``; ``coerce`` returns
                                             None, and ``()`` for a multiple option, without
                                             calling ``_coerce_value``
==========================================  =============================================
"""

from __future__ import annotations

import contextvars
import inspect
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import dramatiq
import pytest
import redis
import typer
import typer.main
from dramatiq.broker import MessageProxy
from dramatiq.brokers import redis as dramatiq_redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import DecodeError
from dramatiq.middleware import CurrentMessage, ShutdownNotifications, TimeLimit
from dramatiq.middleware.shutdown import _CtypesShutdownManager
from dramatiq.middleware.time_limit import _CtypesTimeoutManager
from dramatiq.worker import _WorkQueueItem

from gcmc_jobs import redis_keys
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.testing import wait_until


class _Recorder:
    """Stands in for a Redis script or our ScriptRunner: records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], list[Any]]] = []

    def __call__(self, keys: Any = None, args: Any = None, **kwargs: Any) -> Any:
        self.calls.append((list(keys), list(args)))
        return []


@pytest.fixture
def namespace(gcmc_redis_url: str) -> Iterator[str]:
    name = f"gcmc_test_contract_{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(gcmc_redis_url)
    found = list(client.scan_iter(match=redis_keys.namespace_pattern(name), count=1000))
    if found:
        client.delete(*found)
    client.close()


def test_the_redis_consumer_we_subclass_keeps_its_constructor_and_state(
    gcmc_redis_url: str, namespace: str
) -> None:
    consumer_class = dramatiq_redis._RedisConsumer
    assert issubclass(consumer_class, dramatiq.Consumer)
    assert list(inspect.signature(consumer_class.__init__).parameters) == [
        "self",
        "broker",
        "queue_name",
        "prefetch",
        "timeout",
    ]
    # Dramatiq's own broker names it as its consumer class, and consume() builds that class,
    # so overriding consumer_class is how ours gets used.
    assert dramatiq_redis.RedisBroker.consumer_class.fget(None) is consumer_class  # type: ignore[attr-defined]
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace)
    try:
        consumer = broker.consume("q", prefetch=1, timeout=100)
        assert isinstance(consumer, consumer_class)
        assert type(consumer) is not consumer_class
        assert (consumer.broker, consumer.queue_name) == (broker, "q")
        assert consumer.queued_message_ids == set()
        assert (consumer.prefetch, consumer.timeout, consumer.misses) == (1, 100, 0)
        assert consumer.message_cache == []
    finally:
        broker.close()


def test_a_decode_error_carries_the_body_and_the_cause() -> None:
    cause = ValueError("not json")
    error = DecodeError("bad", b"\xff", cause)  # type: ignore[no-untyped-call]
    assert (error.data, error.error) == (b"\xff", cause)


def test_an_undecodable_body_raises_decode_error_out_of_the_consumer(
    gcmc_redis_url: str, namespace: str
) -> None:
    # Dramatiq's own consumer (not ours) decodes inside __next__: what ours catches.
    broker = dramatiq_redis.RedisBroker(url=gcmc_redis_url, namespace=namespace)
    try:
        broker.declare_queue("q")
        message_id = str(uuid.uuid4())
        broker.client.hset(redis_keys.messages_key(namespace, "q"), message_id, b"\xff junk")
        broker.client.rpush(redis_keys.queue_key(namespace, "q"), message_id)
        consumer = dramatiq_redis._RedisConsumer(broker, "q", 10, 100)

        def drain() -> None:
            for _ in range(50):
                next(consumer)

        with pytest.raises(DecodeError) as raised:
            drain()
        assert raised.value.data == b"\xff junk"
    finally:
        broker.close()


def test_dispatch_returns_a_callable_of_the_queue_and_arguments_with_dramatiqs_argv(
    gcmc_redis_url: str, namespace: str
) -> None:
    # Given Dramatiq's broker and ours, neither doing maintenance (a random draw otherwise)
    theirs = dramatiq_redis.RedisBroker(
        url=gcmc_redis_url, namespace=namespace, maintenance_chance=0
    )
    ours = RedisBroker(url=gcmc_redis_url, namespace=namespace, maintenance_chance=0)
    try:
        recorded_theirs, recorded_ours = _Recorder(), _Recorder()
        theirs.scripts["dispatch"] = recorded_theirs
        ours.__dict__["_dispatch_runner"] = recorded_ours

        # When both dispatch the same command, directly and through do_<command>
        for broker in (theirs, ours):
            broker._dispatch("nack")("q", "some-id")
            broker.do_nack("q", "other-id")

        # Then both send Dramatiq's keys and ARGV: command, timestamp, queue, broker id,
        # heartbeat timeout, dead message TTL, maintenance flag, max unpack size, *args
        def shape(call: tuple[list[Any], list[Any]]) -> list[Any]:
            keys, args = call
            assert isinstance(args[1], int)  # the timestamp, ms
            return [keys, args[0], *args[2:]]

        def expected(broker: Any) -> list[list[Any]]:
            fixed = [broker.heartbeat_timeout, broker.dead_message_ttl, 0]
            return [
                [[namespace], "nack", "q", broker.broker_id, *fixed, broker._max_unpack_size(), i]
                for i in ("some-id", "other-id")
            ]

        assert [shape(c) for c in recorded_theirs.calls] == expected(theirs)
        assert [shape(c) for c in recorded_ours.calls] == expected(ours)
    finally:
        theirs.close()
        ours.close()


def test_the_unpack_size_and_maintenance_helpers_keep_their_signatures(
    gcmc_redis_url: str, namespace: str
) -> None:
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace, maintenance_chance=0)
    try:
        size = broker._max_unpack_size()
        assert isinstance(size, int)
        assert size > 0
        assert broker._should_do_maintenance("fetch") == 0
        assert list(inspect.signature(broker._should_do_maintenance).parameters) == ["command"]
    finally:
        broker.close()


def test_the_dispatch_script_has_the_commands_we_call(gcmc_redis_url: str, namespace: str) -> None:
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace)
    try:
        source = broker.scripts["dispatch"].script
        source = source.decode() if isinstance(source, bytes) else source
        for command in ("enqueue", "fetch", "ack", "nack", "requeue"):
            assert f'command == "{command}"' in source, command
    finally:
        broker.close()


def test_the_dispatch_script_writes_the_keys_redis_keys_names(
    gcmc_redis_url: str, namespace: str
) -> None:
    broker = RedisBroker(url=gcmc_redis_url, namespace=namespace)
    client = broker.client
    try:
        broker.declare_queue("q")
        sent = broker.enqueue(
            dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
        )
        redis_id = sent.options["redis_message_id"]
        assert client.lrange(redis_keys.queue_key(namespace, "q"), 0, -1) == [redis_id.encode()]
        assert client.hexists(redis_keys.messages_key(namespace, "q"), redis_id)

        consumer = broker.consume("q", prefetch=1, timeout=100)
        received = next(m for m in consumer if m is not None)
        acks = redis_keys.acks_key(namespace, broker.broker_id, "q")
        assert client.smembers(acks) == {redis_id.encode()}
        assert client.zscore(redis_keys.heartbeats_key(namespace), broker.broker_id) is not None

        consumer.nack(received)
        assert client.zrange(redis_keys.dead_queue_key(namespace, "q"), 0, -1) == [
            redis_id.encode()
        ]
        consumer.close()
    finally:
        broker.close()


def test_a_message_proxy_keeps_the_stuffed_exception_in__exception() -> None:
    proxy = MessageProxy(
        dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    )
    error = RuntimeError("boom")
    proxy.stuff_exception(error)
    assert proxy._exception is error


def test_the_global_broker_is_a_module_attribute_that_set_broker_writes() -> None:
    before = dramatiq.broker.global_broker
    stub = dramatiq.brokers.stub.StubBroker()
    try:
        dramatiq.set_broker(stub)
        assert dramatiq.broker.global_broker is stub
        dramatiq.set_broker(None)  # type: ignore[arg-type]
        assert dramatiq.broker.global_broker is None
    finally:
        dramatiq.broker.global_broker = before
        stub.close()


def test_typer_vendors_clicks_context_stack() -> None:
    from typer._click.globals import get_current_context

    assert get_current_context(silent=True) is None


def test_typer_coerces_through_a_preset_runtime_param_and_passes_none_by_itself() -> None:
    from typer._click.exceptions import BadParameter
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer.core import _TyperParameter

    handed: list[Any] = []

    @dataclass(frozen=True)
    class Spy(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            handed.append(value)
            real = build_runtime_param(param.type_descriptor)
            return real._coerce_value(value, param=param, ctx=ctx)

    app = typer.Typer(add_completion=False)
    got: list[Any] = []

    @app.command()
    def run(
        count: Annotated[int, typer.Option(min=1)] = 1,
        name: Annotated[str | None, typer.Option()] = None,
        tag: Annotated[list[str] | None, typer.Option()] = None,
    ) -> None:
        got.append((count, name, tag))

    command = typer.main.get_command(app)
    params = [p for p in command.params if isinstance(p, _TyperParameter)]
    assert {p.name for p in params} == {"count", "name", "tag"}
    for param in params:
        assert param._runtime_param is None  # built on first use, unless preset
        descriptor = param.type_descriptor
        param._runtime_param = Spy(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )

    command.main(["--count", "3"], prog_name="run", standalone_mode=False)
    with pytest.raises(BadParameter, match="Input should be greater than or equal to 1"):
        command.main(["--count", "0"], prog_name="run", standalone_mode=False)

    assert got == [(3, None, None)]  # no --tag: () became None, as Typer does
    assert handed == ["3", "0"]  # None and the missing --tag never reached the spy


def test_a_worker_emits_before_worker_boot_before_any_thread_and_shares_its_work_queue() -> None:
    seen: list[Any] = []
    booted: list[Any] = []

    class _Boot(dramatiq.Middleware):
        def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
            seen.append((list(worker.workers), dict(worker.consumers), worker.work_queue))

        def after_consumer_thread_boot(self, broker: dramatiq.Broker, thread: Any) -> None:
            # Emitted by the consumer thread itself, before it consumes anything.
            booted.append((thread, threading.current_thread(), thread.consumer, thread.delay_queue))

    broker = StubBroker(middleware=[_Boot()])
    broker.declare_queue("contract")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        assert seen == [([], {}, worker.work_queue)]
        assert type(worker.work_queue) is queue.PriorityQueue
        assert worker.workers[0].work_queue is worker.work_queue
        assert worker.consumers["contract"].work_queue is worker.work_queue
        consumers = list(worker.consumers.values())  # the queue and its delay queue
        wait_until(lambda: len(booted) == len(consumers), what="the consumer threads' boot")
        assert set(booted) == {(c, c, None, c.delay_queue) for c in consumers}
        assert all(type(c.delay_queue) is queue.PriorityQueue for c in consumers)
    finally:
        worker.stop()
    item = _WorkQueueItem(3, "proxy")  # type: ignore[arg-type]
    assert (item.priority, item.message) == (3, "proxy")
    source = inspect.getsource(dramatiq.worker)
    for use in ("work_queue.put(", "work_queue.get(timeout=", "work_queue.task_done()"):
        assert use in source


def test_the_time_limit_and_shutdown_managers_keep_the_tables_defaults_writes() -> None:
    # Given Dramatiq's own TimeLimit and ShutdownNotifications (no gevent here)
    limit = TimeLimit()
    shutdown = ShutdownNotifications()
    thread_id = threading.get_ident()

    # Then each assigned its ctypes manager in __init__, with the tables defaults.py
    # reads and writes directly
    assert type(limit.manager) is _CtypesTimeoutManager
    assert limit.manager.deadlines == {}
    limit.manager.add_timeout(thread_id, 60_000)
    assert limit.manager.deadlines[thread_id] > time.monotonic()
    limit.manager.remove_timeout(thread_id)
    assert limit.manager.deadlines == {thread_id: None}
    assert type(shutdown.manager) is _CtypesShutdownManager
    shutdown.manager.add_notification()
    assert shutdown.manager.notifications == {thread_id}

    # And CurrentMessage keeps its message in a context variable
    assert isinstance(CurrentMessage._MESSAGE, contextvars.ContextVar)

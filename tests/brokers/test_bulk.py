"""Bulk enqueue: Dramatiq's message format and hooks, a few round trips, pipelined dedup."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, MiddlewareError
from structlog.testing import capture_logs

from gcmc_jobs.brokers.bulk import _transaction_class, enqueue_many
from gcmc_jobs.middleware import RedisStatusStore, StatusTracking
from gcmc_jobs.middleware.metrics import REGISTRY
from gcmc_jobs.redis_keys import status_key
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.settings import Settings
from tests.support.services import RedisServer


class Recorder(Middleware):
    """Records every enqueue hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None]] = []

    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.calls.append(("before", message.message_id, delay))

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.calls.append(("after", message.message_id, delay))


@pytest.fixture
def redis_broker(gcmc_redis_url: str, gcmc_namespace: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(
        url=gcmc_redis_url, namespace=f"{gcmc_namespace}:bulk{uuid.uuid4().hex[:6]}"
    )
    broker.add_middleware(Recorder())
    yield broker
    broker.flush_all()
    broker.close()


def _recorder(broker: dramatiq.Broker) -> Recorder:
    return next(m for m in broker.middleware if isinstance(m, Recorder))


@pytest.mark.parametrize("strategy", ["batched", "dispatch"])
def test_bulk_messages_are_stored_as_dramatiq_stores_them_and_processed(
    redis_broker: RedisBroker, strategy: str
) -> None:
    seen: list[int] = []

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name=f"collect_{strategy}")
    def collect(n: int) -> None:
        seen.append(n)

    # When 1,200 messages are enqueued in chunks of 500
    messages = [collect.message(n) for n in range(1_200)]
    result = enqueue_many(redis_broker, messages, strategy=strategy, chunk_size=500)  # type: ignore[arg-type]

    # Then each is stored under its redis_message_id, encoded like broker.enqueue's
    client = redis_broker.client
    ids = [m.decode() for m in client.lrange(f"{redis_broker.namespace}:bulk", 0, -1)]
    assert ids == [m.options["redis_message_id"] for m in result.enqueued]
    assert len(set(ids)) == 1_200  # a fresh redis id each
    stored = client.hget(f"{redis_broker.namespace}:bulk.msgs", ids[0])
    assert dramatiq.Message.decode(stored) == result.enqueued[0]
    assert stored == result.enqueued[0].encode()  # byte for byte
    assert result.enqueued[0].message_id == messages[0].message_id
    # every hook ran, before then after, once per message
    calls = _recorder(redis_broker).calls
    assert len(calls) == 2_400
    assert {c[1] for c in calls if c[0] == "before"} == {m.message_id for m in messages}

    # And a worker processes all of them
    worker = dramatiq.Worker(redis_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        redis_broker.join("bulk")
        worker.join()
    finally:
        worker.stop()
    assert sorted(seen) == list(range(1_200))


def test_a_delay_goes_to_the_delay_queue_with_an_eta(redis_broker: RedisBroker) -> None:
    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="later")
    def later() -> None: ...

    result = enqueue_many(redis_broker, [later.message()], delay=60_000)
    [message] = result.enqueued
    assert message.queue_name == "bulk.DQ"
    assert message.options["eta"] > 0
    assert redis_broker.client.llen(f"{redis_broker.namespace}:bulk.DQ") == 1
    assert _recorder(redis_broker).calls[0][2] == 60_000


def test_duplicate_keys_are_claimed_in_bulk_and_dropped(
    gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    settings = Settings(
        broker_url=gcmc_redis_url, namespace=f"{gcmc_namespace}:dd{uuid.uuid4().hex[:6]}"
    )
    runtime = Runtime(settings)  # gcmc-jobs' broker and stack, not installed
    broker = runtime.broker
    try:

        @dramatiq.actor(broker=broker, queue_name="bulk", actor_name="keyed")
        def keyed(n: int) -> None: ...

        def batch() -> list[dramatiq.Message[Any]]:
            return [keyed.message_with_options(args=(n,), dedup_key=f"k{n % 3}") for n in range(6)]

        first = enqueue_many(broker, batch())
        again = enqueue_many(broker, batch())
        assert (len(first.enqueued), first.duplicates) == (3, 3)
        assert (len(again.enqueued), again.duplicates) == (0, 6)
        assert redis.Redis.from_url(gcmc_redis_url).llen(f"{settings.namespace}:bulk") == 3
    finally:
        broker.flush_all()
        runtime.close()


def test_other_brokers_enqueue_one_by_one_with_the_same_result() -> None:
    broker = StubBroker()
    broker.add_middleware(Recorder())

    @dramatiq.actor(broker=broker, queue_name="bulk", actor_name="stubbed")
    def stubbed(n: int) -> None: ...

    result = enqueue_many(broker, [stubbed.message(n) for n in range(5)])
    assert len(result.enqueued) == 5
    assert broker.queues["bulk"].qsize() == 5
    assert len(_recorder(broker).calls) == 10


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        enqueue_many(StubBroker(), [], chunk_size=0)


class Refuses(Middleware):
    """Refuses message 3 with a MiddlewareError; has a bug (any other error) on message 1."""

    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        if message.args == (3,):
            raise MiddlewareError("not this one")
        if message.args == (1,):
            raise RuntimeError("a bug in a hook")


def test_hook_errors_behave_as_in_dramatiq_and_nothing_accepted_is_lost(
    redis_broker: RedisBroker,
) -> None:
    redis_broker.add_middleware(Refuses())

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="picky")
    def picky(n: int) -> None: ...

    # A hook's bug is logged and ignored (as Broker.emit_before does); a MiddlewareError
    # stops the call, after the messages before it are written.
    with pytest.raises(MiddlewareError, match="not this one"):
        enqueue_many(redis_broker, [picky.message(n) for n in range(6)])
    assert redis_broker.client.llen(f"{redis_broker.namespace}:bulk") == 3


class Batched(Middleware):
    """Implements the batched enqueue hooks (and the per-message ones, for send()); leaves
    out the messages whose argument is odd."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []

    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.calls.append(("before", 1, delay))

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.calls.append(("after", 1, delay))

    def before_enqueue_many(self, broker: Any, messages: Any, delay: int | None) -> list[Any]:
        self.calls.append(("before_many", len(messages), delay))
        return [m for m in messages if m.args[0] % 2 == 0]

    def after_enqueue_many(self, broker: Any, messages: Any, delay: int | None) -> None:
        self.calls.append(("after_many", len(messages), delay))


def test_a_middleware_with_batched_hooks_is_called_once_per_chunk(
    redis_broker: RedisBroker,
) -> None:
    # Given a middleware with batched enqueue hooks after one with per-message hooks
    batched = Batched()
    redis_broker.add_middleware(batched)

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="chunked")
    def chunked(n: int) -> None: ...

    # When 25 messages are enqueued in chunks of 10
    result = enqueue_many(redis_broker, [chunked.message(n) for n in range(25)], chunk_size=10)

    # Then the batched hooks ran once per chunk, with what was left of it; the messages it
    # left out are counted as duplicates and never written
    assert batched.calls == [
        ("before_many", 10, None), ("after_many", 5, None),
        ("before_many", 10, None), ("after_many", 5, None),
        ("before_many", 5, None), ("after_many", 3, None),
    ]  # fmt: skip
    assert (len(result.enqueued), result.duplicates) == (13, 12)
    assert [m.args[0] for m in result.enqueued] == list(range(0, 25, 2))
    assert redis_broker.client.llen(f"{redis_broker.namespace}:bulk") == 13
    # the per-message middleware saw every message before, the written ones after
    calls = _recorder(redis_broker).calls
    assert sum(1 for c in calls if c[0] == "before") == 25
    assert sum(1 for c in calls if c[0] == "after") == 13

    # And an ordinary send() still calls its per-message hooks
    chunked.send(100)
    assert batched.calls[-2:] == [("before", 1, None), ("after", 1, None)]


class RefusesAll(Middleware):
    def before_enqueue_many(self, broker: Any, messages: Any, delay: int | None) -> None:
        if any(m.args == (13,) for m in messages):
            raise MiddlewareError("not this chunk")


def test_a_middleware_error_from_a_batched_hook_stops_the_call_at_its_chunk(
    redis_broker: RedisBroker,
) -> None:
    redis_broker.add_middleware(RefusesAll())

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="refused")
    def refused(n: int) -> None: ...

    # The chunks before the refused one are written, nothing of it or after it
    with pytest.raises(MiddlewareError, match="not this chunk"):
        enqueue_many(redis_broker, [refused.message(n) for n in range(30)], chunk_size=10)
    assert redis_broker.client.llen(f"{redis_broker.namespace}:bulk") == 10


def test_on_gcmc_jobs_stack_a_chunk_is_logged_once_and_each_message_keeps_its_context(
    gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    settings = Settings(
        broker_url=gcmc_redis_url, namespace=f"{gcmc_namespace}:bl{uuid.uuid4().hex[:6]}"
    )
    runtime = Runtime(settings)
    broker = runtime.broker
    try:
        actor_name = f"logged_{uuid.uuid4().hex[:6]}"

        @dramatiq.actor(broker=broker, queue_name="bulk", actor_name=actor_name)
        def logged(n: int) -> None: ...

        labels = {"actor": actor_name, "queue": "bulk", "state": "enqueued"}
        # When 7 messages are enqueued in chunks of 4 by a caller with a correlation id
        structlog.contextvars.bind_contextvars(correlation_id="req-7")
        try:
            with capture_logs() as logs:
                result = enqueue_many(broker, [logged.message(n) for n in range(7)], chunk_size=4)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")

        # Then each chunk is one enqueued_many event with its count and ids, no message has
        # an event of its own, and every message carries the caller's correlation id
        chunks = [e for e in logs if e["event"] == "enqueued_many"]
        assert [c["messages"] for c in chunks] == [4, 3]
        ids = [m.message_id for m in result.enqueued]
        assert [i for c in chunks for i in c["message_ids"]] == ids
        assert all(c["queues"] == ["bulk"] and c["log_level"] == "info" for c in chunks)
        assert "enqueued" not in [e["event"] for e in logs]
        stored = broker.client.hvals(f"{settings.namespace}:bulk.msgs")  # type: ignore[attr-defined]
        assert {dramatiq.Message.decode(b).options["correlation_id"] for b in stored} == {"req-7"}
        # the metrics counted each message, the status store recorded each
        assert REGISTRY.get_sample_value("gcmc_jobs_messages_total", labels) == 7
        assert all(runtime.stores.status.get(i)["state"] == "enqueued" for i in ids)  # type: ignore[index]
    finally:
        broker.flush_all()
        runtime.close()


def test_a_refused_command_in_a_chunks_transaction_raises_and_writes_nothing(
    redis_broker: RedisBroker,
) -> None:
    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="aborted")
    def aborted(n: int) -> None: ...

    # A command Redis refuses when queued (here one `also` adds) aborts the whole MULTI
    def bad(transaction: Any, messages: Any) -> None:
        transaction.execute_command("NOSUCHCOMMAND", "x")

    with pytest.raises(redis.ResponseError, match="unknown command"):
        enqueue_many(redis_broker, [aborted.message(n) for n in range(3)], also=bad)
    assert redis_broker.client.llen(f"{redis_broker.namespace}:bulk") == 0

    # A command failing inside EXEC is raised too; the broker's connections stay usable
    redis_broker.client.set(f"{redis_broker.namespace}:bulk.msgs", "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        enqueue_many(redis_broker, [aborted.message(n) for n in range(3)])
    redis_broker.client.delete(f"{redis_broker.namespace}:bulk.msgs")
    result = enqueue_many(redis_broker, [aborted.message(n) for n in range(3)])
    assert len(result.enqueued) == 3
    assert redis_broker.client.hlen(f"{redis_broker.namespace}:bulk.msgs") == 3


class InTransaction(Middleware):
    """Writes a key per chunk in the chunk's MULTI (when ``joins``), like StatusTracking's
    records; records its after-enqueue hooks."""

    def __init__(self, joins: bool) -> None:
        self.joins = joins
        self.calls: list[str] = []

    def enqueue_many_in(
        self, broker: Any, transaction: Any, messages: Any, delay: int | None
    ) -> bool:
        self.calls.append("in")
        if self.joins:
            transaction.execute_command("SET", f"{broker.namespace}:marker", len(messages))
        return self.joins

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.calls.append("after")

    def after_enqueue_many(self, broker: Any, messages: Any, delay: int | None) -> None:
        self.calls.append("after_many")


@pytest.mark.parametrize(
    ("joins", "strategy", "expected"),
    [
        (True, "batched", ["in", "in"]),
        (False, "batched", ["in", "after_many", "in", "after_many"]),
        (True, "dispatch", ["after_many", "after_many"]),
    ],
)
def test_a_middleware_writing_in_a_chunks_transaction_skips_its_after_hooks(
    redis_broker: RedisBroker, joins: bool, strategy: str, expected: list[str]
) -> None:
    middleware = InTransaction(joins)
    redis_broker.add_middleware(middleware)

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name=f"joined_{strategy}")
    def joined(n: int) -> None: ...

    # When 7 messages are enqueued in chunks of 4
    enqueue_many(
        redis_broker, [joined.message(n) for n in range(7)], chunk_size=4, strategy=strategy
    )  # type: ignore[arg-type]

    # Then a middleware whose writes joined a chunk's MULTI has no after hook for it; the
    # others (and the "dispatch" strategy, which has no MULTI) keep theirs
    assert middleware.calls == expected
    marker = redis_broker.client.get(f"{redis_broker.namespace}:marker")
    assert marker == (b"3" if joins and strategy == "batched" else None)
    assert redis_broker.client.llen(f"{redis_broker.namespace}:bulk") == 7
    redis_broker.client.delete(f"{redis_broker.namespace}:marker")


def test_on_gcmc_jobs_stack_a_failed_status_write_fails_only_the_records(
    gcmc_redis_url: str, gcmc_namespace: str
) -> None:
    settings = Settings(
        broker_url=gcmc_redis_url, namespace=f"{gcmc_namespace}:bs{uuid.uuid4().hex[:6]}"
    )
    runtime = Runtime(settings)
    broker = runtime.broker
    client = broker.client  # type: ignore[attr-defined]
    try:
        actor_name = f"recorded_{uuid.uuid4().hex[:6]}"

        @dramatiq.actor(broker=broker, queue_name="bulk", actor_name=actor_name)
        def recorded(n: int) -> None: ...

        # Given a chunk whose status records are written in its MULTI, one of whose keys
        # holds a string (the records' script fails inside EXEC)
        messages = [recorded.message(n) for n in range(5)]
        tracking = next(m for m in broker.middleware if isinstance(m, StatusTracking))
        assert tracking.enqueue_many_in(broker, _transaction_class()(), messages, None)
        client.set(status_key(settings.namespace, messages[2].message_id), "not a hash")

        # When it is enqueued
        with capture_logs() as logs:
            result = enqueue_many(broker, messages)

        # Then every message is written and returned, the failure only logged
        assert len(result.enqueued) == 5
        assert client.llen(f"{settings.namespace}:bulk") == 5
        [warning] = [e for e in logs if e["event"] == "status_not_recorded"]
        assert (warning["state"], warning["messages"]) == ("enqueued", 5)
        assert "WRONGTYPE" in warning["error"]
        # the records before the failing key were written, in the same transaction
        assert runtime.stores.status.get(messages[0].message_id)["state"] == "enqueued"  # type: ignore[index]
    finally:
        broker.flush_all()
        client.delete(status_key(settings.namespace, messages[2].message_id))
        runtime.close()


def test_a_status_store_on_another_redis_records_after_the_write(
    redis_broker: RedisBroker, gcmc_redis_url: str
) -> None:
    # Given status tracking whose store is on another Redis database than the broker
    other = redis.Redis.from_url(gcmc_redis_url)
    kwargs = other.connection_pool.connection_kwargs
    elsewhere = redis.Redis(
        host=kwargs["host"],
        port=kwargs["port"],
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        db=kwargs.get("db", 0) + 1,
    )
    store = RedisStatusStore(elsewhere, namespace=redis_broker.namespace)
    tracking = StatusTracking(store)
    redis_broker.add_middleware(tracking)
    here = StatusTracking(RedisStatusStore(other, namespace=redis_broker.namespace))

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="elsewhere")
    def far(n: int) -> None: ...

    messages = [far.message(n) for n in range(3)]
    # Then it cannot join the chunk's MULTI (a store on the broker's Redis can)
    assert not tracking.enqueue_many_in(redis_broker, _transaction_class()(), messages, None)
    assert here.enqueue_many_in(redis_broker, _transaction_class()(), messages, None)
    # and the records are written after the chunk, all the same
    try:
        enqueue_many(redis_broker, messages)
        assert all(store.get(m.message_id)["state"] == "enqueued" for m in messages)  # type: ignore[index]
    finally:
        elsewhere.delete(*[status_key(redis_broker.namespace, m.message_id) for m in messages])
        elsewhere.close()
        other.close()


def _calls(client: redis.Redis, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_bulk_enqueue_loads_the_records_script_once_per_call_and_after_a_flush(
    tmp_path: Path,
) -> None:
    # Given gcmc-jobs' stack on a Redis of its own (its script cache and command counts)
    server = RedisServer(tmp_path / "redis").start()
    runtime = Runtime(Settings(broker_url=server.url, namespace="scripts"))
    client = server.client()
    try:

        @dramatiq.actor(broker=runtime.broker, queue_name="bulk", actor_name="loaded")
        def loaded(n: int) -> None: ...

        status = runtime.stores.status
        for call, flushed in enumerate((False, True), start=1):
            if flushed:
                client.script_flush()  # as a restarted Redis: no script cached
            # When 5 messages are enqueued in chunks of 2 (three MULTIs)
            messages = [loaded.message(n) for n in range(5)]
            with capture_logs() as logs:
                enqueue_many(runtime.broker, messages, chunk_size=2)
            # Then every message's record is written, in the MULTIs, by EVALSHA, the script
            # loaded once by the call (again after the flush)
            assert [status.get(m.message_id)["state"] for m in messages] == ["enqueued"] * 5  # type: ignore[index]
            assert not [e for e in logs if e["event"] == "status_not_recorded"]
            assert _calls(client, "script|load") == call
            assert (_calls(client, "evalsha"), _calls(client, "eval")) == (3 * call, 0)
    finally:
        client.close()
        runtime.close()
        server.kill()


class SeesGc(Middleware):
    def __init__(self) -> None:
        self.enabled: list[bool] = []

    def before_enqueue_many(self, broker: Any, messages: Any, delay: int | None) -> None:
        self.enabled.append(gc.isenabled())
        if any(m.args == (99,) for m in messages):
            raise MiddlewareError("not 99")


def test_the_cyclic_gc_is_paused_during_the_call_and_restored_after(
    redis_broker: RedisBroker,
) -> None:
    sees = SeesGc()
    redis_broker.add_middleware(sees)

    @dramatiq.actor(broker=redis_broker, queue_name="bulk", actor_name="collected")
    def collected(n: int) -> None: ...

    assert gc.isenabled()
    # During a call the collector is paused; after it, enabled again, also after an error
    enqueue_many(redis_broker, [collected.message(n) for n in range(3)])
    assert gc.isenabled()
    with pytest.raises(MiddlewareError, match="not 99"):
        enqueue_many(redis_broker, [collected.message(99)])
    assert gc.isenabled()
    # and a caller that had disabled it finds it disabled still
    gc.disable()
    try:
        enqueue_many(redis_broker, [collected.message(n) for n in range(2)])
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert sees.enabled == [False, False, False]

"""gcmc_jobs.brokers.redis_broker: a message that does not decode is dead-lettered, and the
messages fetched with it are still delivered (Dramatiq's consumer strands them all)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis

from gcmc_jobs.brokers.redis_broker import UNDECODABLE_ACTOR, RedisBroker


class _Nacks(dramatiq.Middleware):
    def __init__(self) -> None:
        self.nacked: list[Any] = []

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.nacked.append(message)


@pytest.fixture
def broker(gcmc_redis_url: str) -> Iterator[tuple[RedisBroker, _Nacks, str]]:
    namespace = f"gcmc_test_rb_{uuid.uuid4().hex[:10]}"
    nacks = _Nacks()
    built = RedisBroker(url=gcmc_redis_url, namespace=namespace, middleware=[nacks])
    built.declare_queue("q")
    yield built, nacks, namespace
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    built.close()


def test_an_undecodable_message_is_dead_lettered_and_the_next_one_is_delivered(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    # Given garbage written into the queue ahead of a good message
    built, nacks, namespace = broker
    garbage_id = str(uuid.uuid4())
    built.client.hset(f"{namespace}:q.msgs", garbage_id, b"\xff not json")
    built.client.rpush(f"{namespace}:q", garbage_id)
    good = built.enqueue(
        dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    )

    # When a consumer fetches both
    consumer = built.consume("q", prefetch=10, timeout=100)
    received = next(message for message in consumer if message is not None)

    # Then the good message arrives, and the garbage is in the dead-letter queue, announced
    assert received.message_id == good.message_id
    assert built.client.zrange(f"{namespace}:q.XQ", 0, -1) == [garbage_id.encode()]
    assert [(m.message_id, m.actor_name) for m in nacks.nacked] == [(garbage_id, UNDECODABLE_ACTOR)]
    error = nacks.nacked[0]._exception
    assert isinstance(error, dramatiq.errors.DecodeError)
    assert "not a Dramatiq message" in str(error)
    consumer.close()


class _Order(dramatiq.Middleware):
    def __init__(self, name: str, seen: list[str], *, fail: bool = False) -> None:
        self.name, self.seen, self.fail = name, seen, fail

    def before_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.seen.append(f"before {self.name}")
        if self.fail:
            raise RuntimeError("boom")

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.seen.append(f"after {self.name}")


def test_hooks_run_in_order_and_see_middleware_added_or_removed_later(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    built, _, _ = broker
    seen: list[str] = []
    message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    built.add_middleware(_Order("a", seen, fail=True))  # a failing hook does not stop the next
    built.emit_before("ack", message)
    built.emit_after("ack", message)
    assert seen == ["before a", "after a"]
    late = _Order("b", seen)
    built.middleware.insert(0, late)  # a direct edit of the list, as tests do
    seen.clear()
    built.emit_before("ack", message)
    built.emit_after("ack", message)
    assert seen == ["before b", "before a", "after a", "after b"]
    built.middleware.remove(late)
    seen.clear()
    built.emit_before("ack", message)
    assert seen == ["before a"]


def _assign(broker: RedisBroker, late: dramatiq.Middleware) -> None:
    broker.middleware = [*broker.middleware, late]


def _augment(broker: RedisBroker, late: dramatiq.Middleware) -> None:
    broker.middleware += [late]


@pytest.mark.parametrize(
    ("add", "remove"),
    [
        (lambda b, m: b.middleware.append(m), lambda b, m: b.middleware.pop()),
        (lambda b, m: b.middleware.extend([m]), lambda b, m: b.middleware.__delitem__(-1)),
        (
            lambda b, m: b.middleware.__setitem__(slice(0, 0), [m]),
            lambda b, m: b.middleware.__setitem__(slice(0, 1), []),
        ),
        (_augment, lambda b, m: b.middleware.clear()),
        (_assign, lambda b, m: b.middleware.remove(m)),
    ],
    ids=["append-pop", "extend-del", "setitem-setitem", "iadd-clear", "assign-remove"],
)
def test_the_cached_hooks_follow_every_edit_of_the_middleware_list(
    broker: tuple[RedisBroker, _Nacks, str], add: Any, remove: Any
) -> None:
    # Given the hooks of "ack" already cached
    built, _, _ = broker
    seen: list[str] = []
    message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    built.emit_before("ack", message)
    built.emit_after("ack", message)
    late = _Order("late", seen)
    # When a middleware is added to the list, then taken out, in another way each time
    add(built, late)
    built.emit_before("ack", message)
    built.emit_after("ack", message)
    remove(built, late)
    built.emit_before("ack", message)
    # Then it was called while in the list, and not after
    assert seen == ["before late", "after late"]


def test_messages_flow_on_after_redis_drops_the_brokers_own_connection(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    # Commands go on a connection the thread keeps; losing it costs no message.
    built, _, namespace = broker
    first = built.enqueue(
        dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    )
    own = built._dispatch_runner.connection()
    own.send_command("CLIENT", "ID")
    built.client.client_kill_filter(_id=own.read_response())
    second = built.enqueue(
        dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    )
    consumer = built.consume("q", prefetch=10, timeout=100)
    received = [next(m for m in consumer if m is not None) for _ in range(2)]
    assert [m.message_id for m in received] == [first.message_id, second.message_id]
    for message in received:
        consumer.ack(message)
    assert built.flush_acks()
    assert built.client.hlen(f"{namespace}:q.msgs") == 0
    consumer.close()


class _Fetches(dramatiq.Middleware):
    """Records each batch the consumer announces (``after_fetch``)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def after_fetch(self, broker: dramatiq.Broker, messages: Any) -> None:
        self.batches.append([m.message_id for m in messages])


def test_a_fetched_batch_is_announced_once_before_its_first_message_is_handed_out(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    # Given five messages waiting, and a middleware that sees fetched batches
    built, _, _ = broker
    fetches = _Fetches()
    built.add_middleware(fetches)
    sent = [
        built.enqueue(
            dramatiq.Message(queue_name="q", actor_name="a", args=(n,), kwargs={}, options={})
        ).message_id
        for n in range(5)
    ]

    # When a consumer hands out the first one
    consumer = built.consume("q", prefetch=10, timeout=100)
    first = next(consumer)

    # Then the whole batch was announced once, already, and the rest follows in order
    assert fetches.batches == [sent]
    rest = [next(consumer).message_id for _ in range(4)]
    assert [first.message_id, *rest] == sent
    assert fetches.batches == [sent]
    assert consumer.outstanding_message_count == 5
    consumer.close()


def test_a_delay_queue_fetch_is_not_announced(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    # Messages of a delay queue are not run where they are fetched, only enqueued when due:
    # nothing to book for them.
    built, _, _ = broker
    fetches = _Fetches()
    built.add_middleware(fetches)
    built.enqueue(
        dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}),
        delay=60_000,
    )
    consumer = built.consume("q.DQ", prefetch=10, timeout=100)
    held = next(message for message in consumer if message is not None)
    assert held.queue_name == "q.DQ"
    assert fetches.batches == []
    consumer.close()


def test_a_fetched_message_holds_its_fields_as_attributes_of_its_own(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    # Given a message on the queue
    built, _, _ = broker
    sent = built.enqueue(
        dramatiq.Message(
            queue_name="q", actor_name="a", args=(1,), kwargs={"b": 2}, options={"o": 3}
        )
    )
    # When a consumer fetches it
    consumer = built.consume("q", prefetch=10, timeout=100)
    received = next(message for message in consumer if message is not None)
    consumer.close()
    # Then its fields are plain attributes (no __getattr__ detour per read), equal to the
    # decoded message's, and its options are the message's own dict
    fields = ("queue_name", "actor_name", "args", "kwargs", "options", "message_id")
    assert set(fields) | {"message_timestamp"} <= set(vars(received))
    assert [getattr(received, f) for f in fields] == [
        "q", "a", (1,), {"b": 2}, {"o": 3, "redis_message_id": sent.options["redis_message_id"]},
        sent.message_id,
    ]  # fmt: skip
    assert received.message_timestamp == sent.message_timestamp
    assert received.options is received._message.options
    assert received.asdict() == received._message.asdict()


class _Recorder(dramatiq.Middleware):
    """Records every call of its hooks; the one named in ``fail`` raises ``error``."""

    def __init__(self, name: str, seen: list[Any], fail: str = "", error: Any = None) -> None:
        self.name, self.seen, self.fail, self.error = name, seen, fail, error

    def _call(self, hook: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.seen.append((self.name, hook, args, kwargs))
        if hook == self.fail:
            raise self.error

    def before_process_message(self, broker: Any, *args: Any, **kwargs: Any) -> None:
        self._call("before_process_message", args, kwargs)

    def after_process_message(self, broker: Any, *args: Any, **kwargs: Any) -> None:
        self._call("after_process_message", args, kwargs)

    def before_enqueue(self, broker: Any, *args: Any, **kwargs: Any) -> None:
        self._call("before_enqueue", args, kwargs)

    def after_enqueue(self, broker: Any, *args: Any, **kwargs: Any) -> None:
        self._call("after_enqueue", args, kwargs)

    def after_skip_message(self, broker: Any, *args: Any, **kwargs: Any) -> None:
        self._call("after_skip_message", args, kwargs)


_ERROR = ValueError("boom")

_EMITS = [
    ("before", "process_message", ("m",), {}),
    ("after", "process_message", ("m",), {"result": 42}),
    ("after", "process_message", ("m",), {"exception": _ERROR}),
    ("after", "process_message", ("m",), {"result": None, "exception": None}),
    ("after", "skip_message", ("m",), {}),
    ("before", "enqueue", ("m", 5), {}),
    ("after", "enqueue", ("m",), {"delay": None}),
]


@pytest.mark.parametrize("failing", [False, True], ids=["ok", "failing"])
@pytest.mark.parametrize(("when", "signal", "args", "kwargs"), _EMITS)
def test_every_shape_of_emit_calls_the_hooks_as_dramatiqs_own_emit_does(
    broker: tuple[RedisBroker, _Nacks, str],
    caplog: pytest.LogCaptureFixture,
    when: str,
    signal: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    failing: bool,
) -> None:
    # Given three middleware, the second failing in the emitted hook (or not)
    built, _, _ = broker
    seen: list[Any] = []
    fail = f"{when}_{signal}" if failing else ""
    for name in "abc":
        built.add_middleware(_Recorder(name, seen, fail if name == "b" else ""), after=None)
    emit = getattr(built, f"emit_{when}")
    plain = getattr(dramatiq.Broker, f"emit_{when}")
    # When ours and Dramatiq's emit the same signal with the same arguments
    caplog.clear()
    emit(signal, *args, **kwargs)
    ours, ours_log = list(seen), [(r.levelname, r.getMessage()) for r in caplog.records]
    seen.clear()
    caplog.clear()
    plain(built, signal, *args, **kwargs)
    theirs, their_log = list(seen), [(r.levelname, r.getMessage()) for r in caplog.records]
    # Then the same hooks ran with the same arguments, in the same order, and a failure was
    # logged the same way (and did not stop the hooks after it)
    assert ours == theirs
    assert len(ours) == 3
    assert ours_log == their_log
    assert len(ours_log) == failing


def test_a_middleware_error_in_a_before_hook_stops_the_emit_and_reaches_the_caller(
    broker: tuple[RedisBroker, _Nacks, str],
) -> None:
    built, _, _ = broker
    seen: list[Any] = []
    stop = dramatiq.middleware.MiddlewareError("stop")
    built.add_middleware(_Recorder("a", seen, "before_process_message", stop))
    built.add_middleware(_Recorder("b", seen))
    with pytest.raises(dramatiq.middleware.MiddlewareError):
        built.emit_before("process_message", "m")
    assert [(name, hook) for name, hook, _, _ in seen] == [("a", "before_process_message")]

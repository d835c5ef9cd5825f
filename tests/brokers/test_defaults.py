"""gcmc_jobs.brokers.defaults: each middleware behaves as Dramatiq's class of the same name.

Every scenario runs twice, with Dramatiq's classes and with ours (``flavour``), on the stub
broker and on gcmc-jobs' Redis broker (``kind``), through a real ``dramatiq.Worker``, and
asserts the same outcome for both."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import dramatiq
import dramatiq.middleware as dramatiqs
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, Shutdown, TimeLimitExceeded

from gcmc_jobs import brokers
from gcmc_jobs.brokers import defaults as ours
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.middleware.stores import Stores
from gcmc_jobs.settings import Settings

QUEUE = "defaults"
NAMES = ("AgeLimit", "TimeLimit", "ShutdownNotifications", "Callbacks", "CurrentMessage")


class Outcomes(dramatiq.Middleware):
    """Records what happened to each message: its exception (by type name), nacks, skips,
    and the current message seen after ``CurrentMessage``'s own ``after_process_message``
    (this middleware sits before it in the stack, so its ``after_*`` hooks run later)."""

    def __init__(self, current: Callable[[], Any]) -> None:
        self.current = current
        self.errors: dict[str, str | None] = {}
        self.nacked: set[str] = set()
        self.skipped: set[str] = set()
        self.current_after: list[Any] = []

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self.errors[message.message_id] = None if exception is None else type(exception).__name__
        self.current_after.append(self.current())

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.skipped.add(message.message_id)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.nacked.add(message.message_id)


@pytest.fixture(params=["dramatiq", "ours"])
def flavour(request: pytest.FixtureRequest) -> ModuleType:
    """The module the five middleware classes come from."""
    return dramatiqs if request.param == "dramatiq" else ours


@pytest.fixture(params=["stub", "redis"])
def make_broker(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[list[dramatiq.Middleware]], dramatiq.Broker]]:
    """Builds the broker of the test (stub or Redis, in a namespace of its own, deleted
    afterwards) on a middleware list."""
    built: list[dramatiq.Broker] = []
    namespace = f"gcmc_test_defaults_{uuid.uuid4().hex[:10]}"
    url = request.getfixturevalue("gcmc_redis_url") if request.param == "redis" else ""

    def make(middleware: list[dramatiq.Middleware]) -> dramatiq.Broker:
        broker: dramatiq.Broker
        if request.param == "stub":
            broker = StubBroker(middleware=middleware)
        else:
            broker = RedisBroker(url=url, namespace=namespace, middleware=middleware)
        broker.emit_after("process_boot")  # TimeLimit starts its monitor thread
        built.append(broker)
        return broker

    yield make
    for broker in built:
        broker.close()
        for middleware in broker.middleware:
            if isinstance(middleware, dramatiqs.TimeLimit):
                # Dramatiq's monitor thread cannot be stopped: let it sleep from now on
                # rather than wake every 10 ms for the rest of the session.
                middleware.manager.interval = 3600
    if url:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)


def _stack(flavour: ModuleType, **time_limit: int) -> tuple[list[dramatiq.Middleware], Outcomes]:
    outcomes = Outcomes(flavour.CurrentMessage.get_current_message)
    return [
        flavour.AgeLimit(),
        flavour.TimeLimit(interval=10, **time_limit),
        flavour.ShutdownNotifications(),
        flavour.Callbacks(),
        Retries(max_retries=0),  # a failure fails the message (nack), at once
        outcomes,
        flavour.CurrentMessage(),
    ], outcomes


def _run(broker: dramatiq.Broker, send: Callable[[], None], threads: int = 2) -> None:
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=20)
    worker.start()
    try:
        send()
        if isinstance(broker, StubBroker):
            broker.join(QUEUE, fail_fast=False)
        else:
            broker.join(QUEUE, timeout=20_000)
        worker.join()
    finally:
        worker.stop()


def test_the_stack_uses_these_classes_which_are_dramatiqs() -> None:
    stack = brokers.build_middleware(Settings.model_construct(), Stores.stubs())
    for name in NAMES:
        ours_class = getattr(ours, name)
        assert issubclass(ours_class, getattr(dramatiqs, name))
        assert [type(m) for m in stack if isinstance(m, getattr(dramatiqs, name))] == [ours_class]


def test_time_limits_interrupt_the_actor_and_fail_the_message(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given the actor's limit (50 ms), a message's (50 ms on an actor allowing 60 s) and the
    # middleware's default (60 s)
    middleware, outcomes = _stack(flavour, time_limit=60_000)
    broker = make_broker(middleware)
    interrupted: list[str] = []

    def spin(name: str) -> None:
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.001)
        except TimeLimitExceeded:
            interrupted.append(name)
            raise

    @dramatiq.actor(broker=broker, queue_name=QUEUE, time_limit=50)
    def limited() -> None:
        spin("limited")

    @dramatiq.actor(broker=broker, queue_name=QUEUE, time_limit=60_000)
    def generous(pause: float) -> None:
        if pause:
            spin("generous")
        time.sleep(pause)

    sent: dict[str, str] = {}

    def send() -> None:
        sent["actor option"] = limited.send().message_id
        sent["message option"] = generous.send_with_options(args=(1,), time_limit=50).message_id
        for i in range(4):  # quick messages after the interrupted ones, on the same threads
            sent[f"quick {i}"] = generous.send(0).message_id

    # When they run
    _run(broker, send)

    # Then the first two were interrupted and failed; the quick ones ran on undisturbed
    assert sorted(interrupted) == ["generous", "limited"]
    errors = {what: outcomes.errors[message_id] for what, message_id in sent.items()}
    assert errors == {
        "actor option": "TimeLimitExceeded",
        "message option": "TimeLimitExceeded",
        **{f"quick {i}": None for i in range(4)},
    }
    assert outcomes.nacked == {sent["actor option"], sent["message option"]}


def test_one_thread_gets_each_messages_own_deadline_in_turn(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given one worker thread and quick and slow messages in turn (50 ms limit)
    middleware, outcomes = _stack(flavour, time_limit=50)
    broker = make_broker(middleware)

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def work(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.001)

    sent: list[str] = []

    def send() -> None:
        for seconds in (0, 5, 0, 0, 5, 0):
            sent.append(work.send(seconds).message_id)

    # When the thread runs them one after the other
    _run(broker, send, threads=1)

    # Then every slow one was interrupted, not a quick one
    assert [outcomes.errors[message_id] for message_id in sent] == [
        None,
        "TimeLimitExceeded",
        None,
        None,
        "TimeLimitExceeded",
        None,
    ]


def test_the_deadline_is_cleared_after_a_message_and_after_a_skipped_one(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given a quick message and an expired one (AgeLimit skips it)
    middleware, outcomes = _stack(flavour, time_limit=60_000)
    broker = make_broker(middleware)
    time_limit = next(m for m in middleware if isinstance(m, dramatiqs.TimeLimit))

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def quick() -> None:
        pass

    def send() -> None:
        quick.send()
        old = quick.message_with_options(max_age=1_000)
        broker.enqueue(old.copy(message_timestamp=old.message_timestamp - 5_000))

    # When both are done
    _run(broker, send)

    # Then one was skipped, and no thread holds a deadline any more (none is interrupted
    # later)
    assert len(outcomes.skipped) == 1
    assert time_limit.manager.deadlines
    assert set(time_limit.manager.deadlines.values()) == {None}


def test_the_age_limit_skips_and_fails_messages_older_than_their_max_age(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given max ages from the actor (1 s), from the message (1 s, on an actor allowing a day)
    # and none at all
    middleware, outcomes = _stack(flavour)
    broker = make_broker(middleware)
    ran: list[str] = []

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_age=1_000)
    def short(label: str) -> None:
        ran.append(label)

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_age=86_400_000)
    def long(label: str) -> None:
        ran.append(label)

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def unlimited(label: str) -> None:
        ran.append(label)

    def aged(message: dramatiq.Message[Any], ms: int) -> None:
        broker.enqueue(message.copy(message_timestamp=message.message_timestamp - ms))

    sent: dict[str, str] = {}

    def send() -> None:
        for label, message, age in [
            ("actor, old", short.message("actor, old"), 5_000),
            ("actor, young", short.message("actor, young"), 0),
            (
                "message, old",
                long.message_with_options(args=("message, old",), max_age=1_000),
                5_000,
            ),
            ("long, old", long.message("long, old"), 5_000),
            ("none, old", unlimited.message("none, old"), 5_000_000),
        ]:
            sent[label] = message.message_id
            aged(message, age)

    # When they are processed
    _run(broker, send)

    # Then the two past their max age were skipped and failed, the others ran
    assert sorted(ran) == ["actor, young", "long, old", "none, old"]
    assert outcomes.skipped == outcomes.nacked == {sent["actor, old"], sent["message, old"]}


def test_a_middleware_max_age_applies_to_actors_without_one(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    middleware, outcomes = _stack(flavour)
    middleware[0] = flavour.AgeLimit(max_age=1_000)
    broker = make_broker(middleware)
    ran: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def note(n: int) -> None:
        ran.append(n)

    def send() -> None:
        broker.enqueue(note.message(1).copy(message_timestamp=int(time.time() * 1000) - 5_000))
        note.send(2)

    _run(broker, send)
    assert ran == [2]
    assert len(outcomes.nacked) == 1


def test_callbacks_fire_from_actor_and_message_options_with_dramatiqs_arguments(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given callbacks named by an actor and, overriding them, by a message
    middleware, _ = _stack(flavour)
    broker = make_broker(middleware)
    calls: list[tuple[str, str, Any]] = []
    lock = threading.Lock()

    def callback(name: str) -> Callable[[dict[str, Any], Any], None]:
        def record(message: dict[str, Any], outcome: Any) -> None:
            with lock:
                calls.append((name, message["args"][0], outcome))

        return record

    for name in ("ok", "ko", "ok_msg", "ko_msg"):
        dramatiq.actor(callback(name), broker=broker, queue_name=QUEUE, actor_name=name)

    @dramatiq.actor(broker=broker, queue_name=QUEUE, on_success="ok", on_failure="ko")
    def job(label: str, fail: bool) -> int:
        if fail:
            raise ValueError(f"bad {label}")
        return 7

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def plain(label: str, fail: bool) -> int:
        if fail:
            raise ValueError(f"bad {label}")
        return 8

    def send() -> None:
        job.send("a", False)
        job.send("b", True)
        job.send_with_options(args=("c", False), on_success="ok_msg")
        job.send_with_options(args=("d", True), on_failure="ko_msg")
        plain.send("e", False)
        plain.send("f", True)
        plain.send_with_options(args=("g", True), on_failure="ko_msg")

    # When they run (and their callbacks)
    _run(broker, send)

    # Then each outcome went to the callback its message or actor names, none for plain's
    error = {"type": "ValueError", "message": "bad {}"}
    assert sorted(calls) == sorted(
        [
            ("ok", "a", 7),
            ("ko", "b", {**error, "message": "bad b"}),
            ("ok_msg", "c", 7),
            ("ko_msg", "d", {**error, "message": "bad d"}),
            ("ko_msg", "g", {**error, "message": "bad g"}),
        ]
    )


def test_the_current_message_is_the_one_running_and_none_after_it(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    middleware, outcomes = _stack(flavour)
    broker = make_broker(middleware)
    seen: list[tuple[int, str]] = []

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def look(n: int) -> None:
        # Dramatiq's class reads the same context variable as ours
        current = dramatiqs.CurrentMessage.get_current_message()
        assert current is flavour.CurrentMessage.get_current_message()
        seen.append((n, current.message_id))

    sent: dict[int, str] = {}

    def send() -> None:
        for n in range(6):
            sent[n] = look.send(n).message_id

    _run(broker, send)
    assert sorted(seen) == sorted(sent.items())
    assert outcomes.current_after == [None] * 6


def test_a_thread_that_asked_once_is_not_interrupted_in_its_next_message(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given one thread that ran a message asking to be notified, then runs one that does not
    middleware, _ = _stack(flavour)
    broker = make_broker(middleware)
    started = threading.Event()
    release = threading.Event()
    ends: list[str] = []

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def run(label: str, wait: bool) -> None:
        if not wait:
            ends.append(label)
            return
        started.set()
        try:
            deadline = time.monotonic() + 5
            while not release.is_set() and time.monotonic() < deadline:
                time.sleep(0.001)
            ends.append(label)
        except Shutdown:
            ends.append(f"{label} interrupted")

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=20)
    worker.start()
    try:
        run.send_with_options(args=("asked", False), notify_shutdown=True)
        run.send("did not ask", True)
        assert started.wait(timeout=10)
        # When the worker shuts down
        threading.Timer(0.3, release.set).start()
    finally:
        worker.stop()

    # Then the second message ran to its end
    assert ends == ["asked", "did not ask"]


def test_shutdown_interrupts_only_the_actors_that_asked_for_it(
    flavour: ModuleType, make_broker: Callable[[list[dramatiq.Middleware]], dramatiq.Broker]
) -> None:
    # Given three messages running: one whose actor asks to be notified of a shutdown, one
    # whose message asks, one that does not ask
    middleware, _ = _stack(flavour)
    broker = make_broker(middleware)
    started = threading.Semaphore(0)
    release = threading.Event()
    ends: dict[str, str] = {}

    def wait(label: str) -> None:
        started.release()
        try:
            deadline = time.monotonic() + 5
            while not release.is_set() and time.monotonic() < deadline:
                time.sleep(0.001)
            ends[label] = "finished"
        except Shutdown:
            ends[label] = "interrupted"

    @dramatiq.actor(broker=broker, queue_name=QUEUE, notify_shutdown=True)
    def notified(label: str) -> None:
        wait(label)

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def plain(label: str) -> None:
        wait(label)

    worker = dramatiq.Worker(broker, worker_threads=3, worker_timeout=20)
    worker.start()
    try:
        notified.send("actor option")
        plain.send_with_options(args=("message option",), notify_shutdown=True)
        plain.send("no option")
        for _ in range(3):
            assert started.acquire(timeout=10)
        # When the worker shuts down (the unnotified one is released soon after)
        threading.Timer(0.3, release.set).start()
    finally:
        worker.stop()

    # Then the two that asked were interrupted, the other ran to its end
    assert ends == {
        "actor option": "interrupted",
        "message option": "interrupted",
        "no option": "finished",
    }


@pytest.mark.parametrize(
    ("name", "hook"),
    [
        ("AgeLimit", "before_process_message"),
        ("TimeLimit", "before_process_message"),
        ("ShutdownNotifications", "before_process_message"),
        ("Callbacks", "after_process_message"),
    ],
)
def test_a_message_of_an_undeclared_actor_raises_actor_not_found_as_dramatiqs(
    name: str, hook: str
) -> None:
    broker = StubBroker()
    message = dramatiq.Message(queue_name=QUEUE, actor_name="gone", args=(), kwargs={}, options={})
    for middleware in (getattr(dramatiqs, name)(), getattr(ours, name)()):
        with pytest.raises(dramatiq.ActorNotFound):
            getattr(middleware, hook)(broker, message)


def test_time_limits_hooks_follow_a_manager_assigned_after_construction() -> None:
    # Given our TimeLimit, its manager replaced by another ctypes manager
    from dramatiq.middleware.time_limit import _CtypesTimeoutManager

    time_limit = ours.TimeLimit(time_limit=60_000)
    first = time_limit.manager
    time_limit.manager = _CtypesTimeoutManager(1_000)
    broker = StubBroker(middleware=[time_limit])

    @dramatiq.actor(broker=broker, queue_name=QUEUE)
    def job() -> None: ...

    # When a message starts, then ends
    message = job.message()
    time_limit.before_process_message(broker, message)
    started = dict(time_limit.manager.deadlines)
    time_limit.after_process_message(broker, message, result=None)

    # Then its deadline was set, then cleared, in the new manager's table, not the first's
    ident = threading.get_ident()
    assert list(started) == [ident]
    assert started[ident] is not None
    assert time_limit.manager.deadlines == {ident: None}
    assert first.deadlines == {}

    # And with a manager of another kind (gevent's, say), its own methods are called
    class Recording:
        def __init__(self) -> None:
            self.calls: list[tuple[str, int]] = []

        def add_timeout(self, thread_id: int, ttl: float) -> None:
            self.calls.append(("add", thread_id))

        def remove_timeout(self, thread_id: int) -> None:
            self.calls.append(("remove", thread_id))

    recording = time_limit.manager = Recording()
    time_limit.before_process_message(broker, message)
    time_limit.after_process_message(broker, message, result=None)
    assert recording.calls == [("add", ident), ("remove", ident)]

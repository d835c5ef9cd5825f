"""Hook selection per message shape (``gcmc_jobs.brokers.hooks.SelectingEmitter``, the
``wants_<hook>`` protocol of ``gcmc_jobs.middleware.selection``): the hooks that cannot act on
a message are not called, and a message option switches a hook on for any actor.

Each test runs the package's whole stack (``build_middleware`` on stub stores) on gcmc-jobs'
Redis broker through a real ``dramatiq.Worker``. Every per-message hook of the stack records
its calls (it is replaced, on the instance, by a bound method that records the call and
calls the original: the middleware's predicate still describes it).
"""

from __future__ import annotations

import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pika
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from periodiq import cron

from gcmc_jobs import brokers
from gcmc_jobs import queue_names as queues
from gcmc_jobs.bootstrap import start_worker
from gcmc_jobs.brokers.defaults import AgeLimit, ShutdownNotifications
from gcmc_jobs.brokers.hooks import implementing
from gcmc_jobs.brokers.rabbitmq_broker import RabbitmqBroker
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.middleware.mail_circuit import MailCircuit
from gcmc_jobs.middleware.provider_rate import ProviderRate
from gcmc_jobs.middleware.selection import MESSAGE_HOOKS, MessageShape, watch
from gcmc_jobs.middleware.stores import Stores
from gcmc_jobs.settings import Settings

QUEUE = f"gcmc_test_selection_{uuid.uuid4().hex[:8]}"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"

#: The hooks that act on every message, whatever its shape, on this stack.
ALWAYS = {
    ("TimeLimit", "before_process_message"),
    ("TimeLimit", "after_process_message"),
    ("Pause", "before_process_message"),
    ("StatusTracking", "before_process_message"),
    ("StatusTracking", "after_process_message"),
    ("StatusTracking", "after_ack"),
    ("StructuredLogging", "before_process_message"),
    ("StructuredLogging", "after_process_message"),
    ("Metrics", "before_process_message"),
    ("Metrics", "after_process_message"),
    ("CurrentMessage", "before_process_message"),
    ("CurrentMessage", "after_process_message"),
}


class Calls:
    """The per-message hook calls of a stack: ``(middleware class, hook)`` per message id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_message: dict[str, set[tuple[str, str]]] = {}

    def record(self, middleware: object, hook: str, message: Any) -> None:
        with self._lock:
            self.by_message.setdefault(message.message_id, set()).add(
                (type(middleware).__name__, hook)
            )

    def of(self, message: dramatiq.Message[Any]) -> set[tuple[str, str]]:
        with self._lock:
            return set(self.by_message.get(message.message_id, set()))

    def instrument(self, middleware: dramatiq.Middleware) -> None:
        """Record each per-message hook ``middleware`` implements (before any emit)."""
        recorder = self
        for name in MESSAGE_HOOKS:
            for original in implementing([middleware], name):

                def hook(
                    owner: Any,
                    broker: Any,
                    message: Any,
                    *args: Any,
                    _original: Any = original,
                    _name: str = name,
                    **kwargs: Any,
                ) -> Any:
                    recorder.record(owner, _name, message)
                    return _original(broker, message, *args, **kwargs)

                setattr(middleware, name, types.MethodType(hook, middleware))


class Stack:
    """A Redis broker on the package's stack, whose hooks record their calls."""

    def __init__(self, broker: RedisBroker, calls: Calls, stores: Stores) -> None:
        self.broker = broker
        self.calls = calls
        self.stores = stores
        self.worker: dramatiq.Worker | None = None

    def middleware(self, kind: type[Any]) -> Any:
        return next(m for m in self.broker.middleware if isinstance(m, kind))

    def run(self, send: Callable[[], list[dramatiq.Message[Any]]]) -> list[dramatiq.Message[Any]]:
        """Send with the stack's worker running (one for the whole test, started on first
        use: starting one adds its middleware, which would make the broker forget its
        selection), and wait until every queue is drained."""
        if self.worker is None:
            # start_worker: returns once every thread runs, so the stop at the end is kept.
            self.worker = start_worker(
                dramatiq.Worker(self.broker, worker_threads=2, worker_timeout=50)
            )
        sent = send()
        for queue_name in self.broker.get_declared_queues():
            self.broker.join(queue_name, timeout=20_000)
        self.worker.join()
        return sent

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.broker.close()


def _stack_on(make: Callable[[list[dramatiq.Middleware]], Any]) -> Stack:
    stores = Stores.stubs()
    settings = Settings.model_construct(provider_rate=50.0, min_backoff_ms=10, max_backoff_ms=20)
    middleware = brokers.build_middleware(settings, stores)
    calls = Calls()
    for m in middleware:
        calls.instrument(m)
    broker = make(middleware)
    broker.emit_after("process_boot")
    return Stack(broker, calls, stores)


@pytest.fixture
def stack(gcmc_redis_url: str) -> Iterator[Stack]:
    namespace = f"gcmc_test_selection_{uuid.uuid4().hex[:10]}"
    built = _stack_on(
        lambda middleware: RedisBroker(
            url=gcmc_redis_url, namespace=namespace, middleware=middleware
        )
    )
    yield built
    built.close()
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def rabbitmq_stack() -> Iterator[Stack]:
    built = _stack_on(lambda middleware: RabbitmqBroker(url=RABBITMQ_URL, middleware=middleware))
    yield built
    queue_names = list(built.broker.get_declared_queues())
    built.close()
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for name in queue_names:
        for queue_name in (name, f"{name}.DQ", f"{name}.XQ"):
            channel.queue_delete(queue_name)
    connection.close()


def _declare(stack: Stack, name: str, queue_name: str = QUEUE, **options: Any) -> Any:
    ran: list[Any] = []

    def body(*args: Any) -> Any:
        ran.append(args)
        if args and args[0] == "fail":
            raise ValueError("asked to fail")
        return len(ran)

    declared = dramatiq.actor(
        body, broker=stack.broker, actor_name=name, queue_name=queue_name, **options
    )
    declared.ran = ran
    return declared


def test_a_plain_message_runs_only_the_hooks_that_act_on_every_message(stack: Stack) -> None:
    # Given an actor that uses no option of the stack
    plain = _declare(stack, "plain")

    # When one of its messages succeeds
    (message,) = stack.run(lambda: [plain.send()])

    # Then only the hooks that act on every message were called for it: no AgeLimit,
    # ShutdownNotifications, Callbacks, Pipelines, Retries, PeriodiqMiddleware, MailCircuit,
    # Deduplication, ProviderRate or RateLimits hook
    assert plain.ran == [()]
    assert stack.calls.of(message) == ALWAYS


def test_a_failed_plain_message_gets_retries_and_no_callback(stack: Stack) -> None:
    # Given a plain actor with one retry
    plain = _declare(stack, "plain", max_retries=1)

    # When its message fails twice
    (message,) = stack.run(lambda: [plain.send("fail")])

    # Then Retries ran after the failure and retried it once; no callback hook was called
    assert plain.ran == [("fail",), ("fail",)]
    called = stack.calls.of(message)
    assert ("Retries", "after_process_message") in called
    assert ("DeadLetters", "after_process_message") in called  # the attempt remembered
    assert ("Callbacks", "after_process_message") not in called
    assert ("Deduplication", "after_nack") not in called
    assert ("StatusTracking", "after_nack") in called


@pytest.mark.parametrize(
    ("options", "hooks"),
    [
        ({"on_success": "callback"}, {("Callbacks", "after_process_message")}),
        (
            {"notify_shutdown": True},
            {
                ("ShutdownNotifications", "before_process_message"),
                ("ShutdownNotifications", "after_process_message"),
            },
        ),
        ({"max_age": 60_000}, {("AgeLimit", "before_process_message")}),
        (
            {"dedup_key": "once"},
            {
                ("Deduplication", "before_process_message"),
                ("Deduplication", "after_process_message"),
            },
        ),
        ({"rate_limit_key": "someone"}, {("RateLimits", "before_process_message")}),
    ],
    ids=["on_success", "notify_shutdown", "max_age", "dedup_key", "rate_limit_key"],
)
def test_a_message_option_switches_its_hooks_on_for_a_plain_actor(
    stack: Stack, options: dict[str, Any], hooks: set[tuple[str, str]]
) -> None:
    # Given a plain actor, and a callback actor
    plain = _declare(stack, "plain")
    callback = _declare(stack, "callback")

    # When one of its messages carries the option, another (run first: a notified message
    # switches ShutdownNotifications' after hooks on for every later one) does not
    (without,) = stack.run(lambda: [plain.send_with_options(args=(2,))])
    (with_option,) = stack.run(lambda: [plain.send_with_options(args=(1,), **options)])

    # Then the option's hooks ran for the first only
    assert sorted(plain.ran) == [(1,), (2,)]
    assert stack.calls.of(with_option) == ALWAYS | hooks
    assert stack.calls.of(without) == ALWAYS
    if "on_success" in options:
        assert len(callback.ran) == 1  # the callback was sent and ran


def test_an_actor_option_switches_its_hooks_on(stack: Stack) -> None:
    # Given actors that each use one option of the stack
    declared = {
        "on_success": _declare(stack, "with_callback", on_success="callback"),
        "notify_shutdown": _declare(stack, "notified", notify_shutdown=True),
        "max_age": _declare(stack, "aged", max_age=60_000),
        "periodic": _declare(stack, "periodic", periodic=cron("0 0 1 1 *")),
    }
    _declare(stack, "callback")

    # When each runs a message (the notified one last: it switches ShutdownNotifications'
    # after hooks on for every later message)
    notified = declared.pop("notify_shutdown")
    sent = stack.run(lambda: [actor.send() for actor in declared.values()])
    sent += stack.run(lambda: [notified.send()])

    # Then each got its own option's hooks
    expected = {
        "on_success": {("Callbacks", "after_process_message")},
        "max_age": {("AgeLimit", "before_process_message")},
        "periodic": {("PeriodiqMiddleware", "before_process_message")},
        "notify_shutdown": {
            ("ShutdownNotifications", "before_process_message"),
            ("ShutdownNotifications", "after_process_message"),
        },
    }
    for (option, hooks), message in zip(expected.items(), sent, strict=True):
        assert stack.calls.of(message) == ALWAYS | hooks, option


def test_a_message_past_its_max_age_option_is_aged_out(stack: Stack) -> None:
    # Given a plain actor and a message of it sent long ago with a max_age option
    plain = _declare(stack, "plain")
    old = plain.message_with_options(args=(1,), max_age=1_000).copy(
        message_timestamp=int(time.time() * 1000) - 60_000
    )

    # When it is processed
    stack.run(lambda: [stack.broker.enqueue(old)])

    # Then AgeLimit skipped it: it never ran
    assert plain.ran == []
    assert ("AgeLimit", "before_process_message") in stack.calls.of(old)


def test_a_pipelines_first_step_gets_the_pipelines_hook_and_the_second_step_runs(
    stack: Stack,
) -> None:
    # Given a pipeline of two plain actors
    first, second = _declare(stack, "first"), _declare(stack, "second")
    pipe = dramatiq.pipeline([first.message(), second.message()], broker=stack.broker)

    # When it runs
    stack.run(lambda: [pipe.run().messages[0]])

    # Then the first step's result went on to the second step
    assert first.ran == [()]
    assert second.ran == [(1,)]


def test_the_email_queues_get_the_mail_circuit_and_provider_rate_hooks(stack: Stack) -> None:
    # Given an actor on the email queue and one elsewhere (a provider rate is set)
    email = _declare(stack, "email", queue_name=queues.EMAIL)
    plain = _declare(stack, "plain")

    # When both run a message
    on_email, elsewhere = stack.run(lambda: [email.send(), plain.send()])

    # Then the breaker's and the provider rate's hooks ran for the email only
    assert stack.calls.of(on_email) == ALWAYS | {
        ("MailCircuit", "before_process_message"),
        ("MailCircuit", "after_process_message"),
        ("ProviderRate", "before_process_message"),
    }
    assert stack.calls.of(elsewhere) == ALWAYS


def test_a_re_declared_actor_gets_the_hooks_of_its_new_options(stack: Stack) -> None:
    # Given an actor whose messages ran without a callback
    _declare(stack, "job")
    callback = _declare(stack, "callback")
    (before,) = stack.run(lambda: [stack.broker.actors["job"].send()])

    # When it is declared again under the same name with an on_success callback (as
    # gcmc_jobs.brokers.bind does: an actor made on another broker, then declared on this one)
    job = dramatiq.actor(
        lambda: None,
        broker=StubBroker(),
        actor_name="job",
        queue_name=QUEUE,
        on_success="callback",
    )
    job.broker = stack.broker
    stack.broker.declare_actor(job)
    (after,) = stack.run(lambda: [job.send()])

    # Then its next message got the Callbacks hook, and the callback ran
    assert ("Callbacks", "after_process_message") not in stack.calls.of(before)
    assert ("Callbacks", "after_process_message") in stack.calls.of(after)
    assert len(callback.ran) == 1


def test_an_added_middleware_is_called_from_the_next_message(stack: Stack) -> None:
    # Given a plain actor whose messages ran
    plain = _declare(stack, "plain")
    stack.run(lambda: [plain.send()])

    # When a middleware without predicates is added (and one that wants nothing)
    seen: list[str] = []

    class Recorder(dramatiq.Middleware):
        def before_process_message(self, broker: Any, message: Any) -> None:
            seen.append(message.message_id)

    class Uninterested(dramatiq.Middleware):
        def wants_before_process_message(self, broker: Any, shape: MessageShape) -> bool:
            return False

        def before_process_message(self, broker: Any, message: Any) -> None:
            seen.append("uninterested")

    stack.broker.add_middleware(Recorder())
    stack.broker.add_middleware(Uninterested())
    (message,) = stack.run(lambda: [plain.send()])

    # Then the first is called for the next message, the second is not
    assert seen == [message.message_id]


def test_assigning_a_selection_input_is_seen_at_once(stack: Stack) -> None:
    # Given a plain actor whose messages ran without an age limit
    plain = _declare(stack, "plain")
    stack.run(lambda: [plain.send(1)])

    # When the middleware's max_age is assigned, and an old message arrives
    stack.middleware(AgeLimit).max_age = 1_000
    old = plain.message(2).copy(message_timestamp=int(time.time() * 1000) - 60_000)
    stack.run(lambda: [stack.broker.enqueue(old)])

    # Then it is aged out
    assert plain.ran == [(1,)]
    assert ("AgeLimit", "before_process_message") in stack.calls.of(old)


class _Watcher:
    """What watches a middleware's selection inputs: any object with ``forget_hooks()``
    (each gcmc-jobs broker is one)."""

    def __init__(self) -> None:
        self.forgotten = 0

    def forget_hooks(self) -> None:
        self.forgotten += 1


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """The interpreter switches threads as often as it can: a race between two threads'
    Python code shows in every run, not once in a while."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_an_assignment_while_another_thread_adds_watchers_tells_each_watcher(
    eager_thread_switches: None,
) -> None:
    # Given a middleware many brokers watch, and a thread adding more (a new shape's first
    # sight on each of them)
    middleware = AgeLimit()
    early = [_Watcher() for _ in range(10_000)]
    for watcher in early:
        watch(middleware, watcher)
    late: list[_Watcher] = []
    adding = threading.Event()
    stop = threading.Event()

    def add() -> None:
        while not stop.is_set():
            late.append(_Watcher())
            watch(middleware, late[-1])
            adding.set()

    thread = threading.Thread(target=add)
    thread.start()

    # When its selection input is assigned, again and again, meanwhile
    try:
        assert adding.wait(10)
        for _ in range(20):
            middleware.max_age = 1_000
    finally:
        stop.set()
        thread.join()

    # Then no assignment failed, and each told every broker that watched before it
    assert [watcher.forgotten for watcher in early] == [20] * len(early)
    assert late


def test_turning_the_mail_circuit_off_leaves_its_hooks_out(stack: Stack) -> None:
    # Given an email actor whose messages ran with the breaker on
    email = _declare(stack, "email", queue_name=queues.EMAIL)
    (on,) = stack.run(lambda: [email.send()])

    # When the breaker is turned off
    stack.middleware(MailCircuit).enabled = False
    (off,) = stack.run(lambda: [email.send()])

    # Then its hooks ran for the first message only
    assert ("MailCircuit", "before_process_message") in stack.calls.of(on)
    assert ("MailCircuit", "before_process_message") not in stack.calls.of(off)


def test_a_middleware_wide_notify_shutdown_is_seen_at_once(stack: Stack) -> None:
    # Given a plain actor whose messages ran
    plain = _declare(stack, "plain")
    stack.run(lambda: [plain.send()])

    # When the middleware asks every actor to be notified
    stack.middleware(ShutdownNotifications).notify_shutdown = True
    (message,) = stack.run(lambda: [plain.send()])

    # Then the next message registers for notifications
    assert ("ShutdownNotifications", "before_process_message") in stack.calls.of(message)


def test_shutdown_notifications_after_hooks_run_for_every_message_once_a_thread_was_notified(
    stack: Stack,
) -> None:
    # Given a plain actor whose message ran while no thread was ever notified
    plain = _declare(stack, "plain")
    notified = _declare(stack, "notified", notify_shutdown=True)
    (before,) = stack.run(lambda: [plain.send()])
    shutdown = stack.middleware(ShutdownNotifications)
    assert not shutdown.notified

    # When a message asking for notifications runs, then a plain one again
    (asking,) = stack.run(lambda: [notified.send()])
    (after,) = stack.run(lambda: [plain.send()])

    # Then the after hook was left out of the first plain message (no thread could be in
    # the set), and called for the notified one and every message after it
    assert ("ShutdownNotifications", "after_process_message") not in stack.calls.of(before)
    assert shutdown.notified
    assert ("ShutdownNotifications", "after_process_message") in stack.calls.of(asking)
    assert stack.calls.of(after) == ALWAYS | {("ShutdownNotifications", "after_process_message")}
    assert shutdown.manager.notifications == set()


def test_a_keyed_message_that_fails_for_good_releases_its_dedup_key(stack: Stack) -> None:
    # Given a plain actor without retries, and a message of it with a dedup key option
    plain = _declare(stack, "plain", max_retries=0)

    # When it fails for good
    (keyed,) = stack.run(lambda: [plain.send_with_options(args=("fail",), dedup_key="k")])

    # Then Deduplication's after_nack released the key: the same key may be sent again
    assert ("Deduplication", "after_nack") in stack.calls.of(keyed)
    assert stack.stores.dedup.claim("k", "another message", 60_000).name == "CLAIMED"


def test_a_skipped_message_with_a_rate_limit_key_gets_the_rate_limits_skip_hook(
    stack: Stack,
) -> None:
    # Given two old messages of a plain actor with a max_age option, one rate limited
    plain = _declare(stack, "plain")
    long_ago = int(time.time() * 1000) - 60_000
    keyed = plain.message_with_options(args=(1,), max_age=1_000, rate_limit_key="r")
    unkeyed = plain.message_with_options(args=(2,), max_age=1_000)

    # When AgeLimit skips both
    stack.run(
        lambda: [
            stack.broker.enqueue(message.copy(message_timestamp=long_ago))
            for message in (keyed, unkeyed)
        ]
    )

    # Then RateLimits' after_skip_message (which gives a booked slot back) ran for the keyed
    # one only
    assert plain.ran == []
    assert ("RateLimits", "after_skip_message") in stack.calls.of(keyed)
    assert ("RateLimits", "after_skip_message") not in stack.calls.of(unkeyed)
    assert ("Metrics", "after_skip_message") in stack.calls.of(unkeyed)


class _Step(dramatiq.Middleware):
    """Records its process_message hooks in ``seen``; ``wanted`` (None: no predicate) is
    what its predicates answer; ``raises`` is raised by its hooks."""

    def __init__(
        self, name: str, seen: list[str], *, wanted: bool | None, raises: Any = None
    ) -> None:
        self.name, self.seen, self.raises = name, seen, raises
        if wanted is not None:
            self.wants_before_process_message = self.wants_after_process_message = (
                lambda broker, shape: wanted
            )

    def before_process_message(self, broker: Any, message: Any) -> None:
        self.seen.append(f"before {self.name}")
        if self.raises is not None:
            raise self.raises

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self.seen.append(f"after {self.name} {'failed' if exception else result}")
        if self.raises is not None:
            raise RuntimeError("after hook failed")


def test_selected_hooks_keep_dramatiqs_order_and_error_handling(
    gcmc_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given, in stack order: a middleware that wants the message, one that does not, one
    # without predicates whose hooks fail, and one whose before hook skips the message
    seen: list[str] = []
    steps = [
        _Step("wanted", seen, wanted=True),
        _Step("unwanted", seen, wanted=False),
        _Step("failing", seen, wanted=None, raises=RuntimeError("before hook failed")),
        _Step("skipping", seen, wanted=True, raises=dramatiq.middleware.SkipMessage("skip")),
    ]
    broker = RedisBroker(url=gcmc_redis_url, namespace=f"gcmc_test_{uuid.uuid4().hex}")
    broker.middleware = steps
    message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    try:
        # When the per-message signals are emitted
        with pytest.raises(dramatiq.middleware.SkipMessage):
            broker.emit_before("process_message", message)
        broker.emit_after("process_message", message, result=7)
        broker.emit_after("process_message", message, exception=ValueError("x"))
    finally:
        broker.close()

    # Then the unwanted one is never called, the failing ones are logged and the next one
    # runs, the skip propagates, and the after hooks run in reverse stack order
    assert seen == [
        "before wanted",
        "before failing",
        "before skipping",
        "after skipping 7",
        "after failing 7",
        "after wanted 7",
        "after skipping failed",
        "after failing failed",
        "after wanted failed",
    ]
    failures = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(failures) == 5
    assert failures[0].startswith("Unexpected failure in before_process_message of <")
    assert all("after_process_message" in f for f in failures[1:])


def test_the_rabbitmq_broker_selects_the_same_hooks(rabbitmq_stack: Stack) -> None:
    # Given a plain actor and a callback on gcmc-jobs' RabbitMQ broker
    plain = _declare(rabbitmq_stack, "plain")
    callback = _declare(rabbitmq_stack, "callback")

    # When a message of it runs without options, and one with an on_success option
    without, with_option = rabbitmq_stack.run(
        lambda: [plain.send(1), plain.send_with_options(args=(2,), on_success="callback")]
    )

    # Then the first got only the hooks that act on every message, the second the callback
    assert rabbitmq_stack.calls.of(without) == ALWAYS
    assert rabbitmq_stack.calls.of(with_option) == ALWAYS | {("Callbacks", "after_process_message")}
    assert len(callback.ran) == 1


def test_removing_the_provider_rate_leaves_its_hook_out(stack: Stack) -> None:
    # Given an email actor whose messages ran under a provider rate
    email = _declare(stack, "email", queue_name=queues.EMAIL)
    (limited,) = stack.run(lambda: [email.send()])

    # When the rate is taken away
    stack.middleware(ProviderRate).rate = None
    (unlimited,) = stack.run(lambda: [email.send()])

    # Then its hook ran for the first message only
    assert ("ProviderRate", "before_process_message") in stack.calls.of(limited)
    assert ("ProviderRate", "before_process_message") not in stack.calls.of(unlimited)


def test_forget_hooks_makes_an_in_place_edit_of_actor_options_count(stack: Stack) -> None:
    # Given a plain actor whose messages ran
    plain = _declare(stack, "plain")
    _declare(stack, "callback")
    stack.run(lambda: [plain.send()])

    # When its options are edited in place (not seen), then the broker told to forget
    plain.options["on_success"] = "callback"
    (unseen,) = stack.run(lambda: [plain.send()])
    stack.broker.forget_hooks()
    (seen,) = stack.run(lambda: [plain.send()])

    # Then the callback hook runs from the message after forget_hooks()
    assert ("Callbacks", "after_process_message") not in stack.calls.of(unseen)
    assert ("Callbacks", "after_process_message") in stack.calls.of(seen)


def test_a_thread_whose_notified_actor_is_re_declared_mid_message_leaves_the_set(
    stack: Stack,
) -> None:
    # Given an actor that asks for shutdown notifications and, while its message runs, is
    # re-declared without them (the selection is forgotten mid-message)
    redeclared: list[bool] = []

    def notified() -> None:
        # declared again as gcmc_jobs.brokers.bind does: made on another broker first
        plain = dramatiq.actor(
            lambda: None, broker=StubBroker(), actor_name="notified", queue_name=QUEUE
        )
        plain.broker = stack.broker
        stack.broker.declare_actor(plain)
        redeclared.append(True)

    first = dramatiq.actor(
        notified, broker=stack.broker, actor_name="notified", queue_name=QUEUE,
        notify_shutdown=True,
    )  # fmt: skip

    # When its message has run
    (message,) = stack.run(lambda: [first.send()])

    # Then its thread was taken out of the notified set after it, as before the selection
    shutdown = stack.middleware(ShutdownNotifications)
    assert redeclared == [True]
    assert ("ShutdownNotifications", "before_process_message") in stack.calls.of(message)
    assert ("ShutdownNotifications", "after_process_message") in stack.calls.of(message)
    assert shutdown.manager.notifications == set()

"""gcmc_jobs.brokers.work_queue: the queue between a worker's consumer and worker threads
keeps queue.PriorityQueue's semantics as Dramatiq uses them, and Dramatiq's Worker on our
RedisBroker runs on it, in priority order, and requeues what it still holds when stopped."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pika
import pytest
import redis
from dramatiq.common import iter_queue
from dramatiq.worker import ConsumerThread, _WorkQueueItem
from hypothesis import given
from hypothesis import strategies as st

from gcmc_jobs.brokers import build_broker
from gcmc_jobs.brokers.rabbitmq_broker import RabbitmqBroker
from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.brokers.work_queue import (
    WorkQueue,
    WorkQueues,
    install_delay_queue,
    install_hand_off,
    install_work_queue,
)
from gcmc_jobs.middleware.stores import Stores
from gcmc_jobs.redis_keys import acks_key
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import wait_until

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"

# An operation: put a message of that priority, or (None) get one when any is waiting.
operations = st.lists(st.one_of(st.integers(min_value=-2, max_value=3), st.none()), max_size=60)


@given(operations)
def test_items_come_out_in_the_order_of_a_priority_queue_for_any_puts_and_gets(
    ops: list[int | None],
) -> None:
    # Given Dramatiq's PriorityQueue (items ordered by priority, then put time) and ours
    theirs: queue.PriorityQueue[_WorkQueueItem] = queue.PriorityQueue()
    ours = WorkQueue()
    taken_theirs: list[str] = []
    taken_ours: list[str] = []
    for n, op in enumerate(ops):
        if op is None:
            if not theirs.empty():
                taken_theirs.append(theirs.get_nowait().message)
                taken_ours.append(ours.get_nowait().message)
            continue
        # The put time is explicit: two monotonic_ns() readings may be equal.
        theirs.put(_WorkQueueItem(op, f"m{n}", n))  # type: ignore[arg-type]
        ours.put(_WorkQueueItem(op, f"m{n}", n))  # type: ignore[arg-type]
    # When both are drained
    taken_theirs += [item.message for item in iter_queue(theirs)]
    taken_ours += [item.message for item in iter_queue(ours)]
    # Then the same messages came out in the same order, and both are empty
    assert taken_ours == taken_theirs
    assert ours.empty()
    assert ours.qsize() == 0
    assert ours.unfinished_tasks == theirs.unfinished_tasks == len(taken_ours)


def test_a_get_that_times_out_or_would_block_raises_empty() -> None:
    work = WorkQueue()
    with pytest.raises(queue.Empty):
        work.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        work.get_nowait()
    with pytest.raises(queue.Empty):
        work.get(block=False)


def test_items_are_ordered_without_comparing_them() -> None:
    # Equal priority and equal put time: a PriorityQueue would compare the items' fields;
    # ours keeps the put order.
    work = WorkQueue()
    for name in ("a", "b", "c"):
        work.put(_WorkQueueItem(0, name, 0))  # type: ignore[arg-type]
    assert [work.get().message for _ in range(3)] == ["a", "b", "c"]


def test_join_returns_once_every_item_is_marked_done() -> None:
    # Given three items put, and a thread joining the queue
    work = WorkQueue()
    for n in range(3):
        work.put(_WorkQueueItem(0, f"m{n}"))  # type: ignore[arg-type]
    joined = threading.Event()
    joiner = threading.Thread(target=lambda: (work.join(), joined.set()))
    joiner.start()

    # When all three are taken and two of them marked done, the join still waits
    taken = [work.get(timeout=1) for _ in range(3)]
    work.task_done()
    work.task_done()
    assert work.unfinished_tasks == 1
    assert not joined.wait(0.05)

    # Then the third task_done releases it, and a join now returns at once
    work.task_done()
    joiner.join(timeout=10)
    assert joined.is_set()
    assert not joiner.is_alive()
    assert work.unfinished_tasks == 0
    assert len(taken) == 3
    work.join()
    with pytest.raises(ValueError, match="too many"):
        work.task_done()


def test_a_get_waiting_in_another_thread_takes_an_item_put_later() -> None:
    work = WorkQueue()
    got: list[Any] = []
    getter = threading.Thread(target=lambda: got.append(work.get(timeout=30).message))
    getter.start()
    work.put(_WorkQueueItem(0, "late"))  # type: ignore[arg-type]
    getter.join(timeout=30)
    assert got == ["late"]


def test_iter_queue_drains_it_in_priority_order() -> None:
    # Dramatiq's Worker.stop requeues the work queue with common.iter_queue (get_nowait).
    work = WorkQueue()
    for priority, name in ((5, "low"), (0, "high"), (5, "low2")):
        work.put(_WorkQueueItem(priority, name))  # type: ignore[arg-type]
    assert work.qsize() == 3
    assert not work.empty()
    assert not work.full()
    assert [item.message for item in iter_queue(work)] == ["high", "low", "low2"]
    assert work.empty()


@pytest.fixture
def broker(gcmc_redis_url: str) -> Iterator[tuple[RedisBroker, str]]:
    namespace = f"gcmc_test_wq_{uuid.uuid4().hex[:10]}"
    built = RedisBroker(url=gcmc_redis_url, namespace=namespace, middleware=[])
    yield built, namespace
    client = redis.Redis.from_url(gcmc_redis_url)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    built.close()


def test_a_worker_gets_the_work_queue_only_while_it_holds_dramatiqs_empty_one(
    broker: tuple[RedisBroker, str],
) -> None:
    built, _ = broker
    worker = dramatiq.Worker(built, worker_threads=1)
    assert type(worker.work_queue) is queue.PriorityQueue
    assert install_work_queue(built, worker)
    assert type(worker.work_queue) is WorkQueue
    assert not install_work_queue(built, worker)  # already replaced: left alone
    holding = dramatiq.Worker(built, worker_threads=1)
    holding.work_queue.put(_WorkQueueItem(0, "held"))  # type: ignore[arg-type]
    assert not install_work_queue(built, holding)  # not empty: left alone
    assert type(holding.work_queue) is queue.PriorityQueue


def test_the_redis_and_rabbitmq_brokers_put_work_queues_first_and_the_stub_broker_none(
    gcmc_redis_url: str,
) -> None:
    # Given the brokers build_broker makes, and ours built directly (connecting to nothing)
    stores = Stores.stubs()
    kinds = {
        url: build_broker(Settings(broker_url=url, redis_url=None), stores)
        for url in (gcmc_redis_url, RABBITMQ_URL, "stub://")
    }
    own = _Own()
    direct = [
        RedisBroker(url=gcmc_redis_url, middleware=[own]),
        RabbitmqBroker(url=RABBITMQ_URL, middleware=[own]),
    ]
    defaulted = RedisBroker(url=gcmc_redis_url)  # Dramatiq's default stack
    try:
        # Then the Redis and RabbitMQ ones hold one WorkQueues, first, before the stack
        for built in [kinds[gcmc_redis_url], kinds[RABBITMQ_URL], *direct, defaulted]:
            assert type(built.middleware[0]) is WorkQueues
            assert sum(isinstance(m, WorkQueues) for m in built.middleware) == 1
        assert direct[0].middleware[1:] == [own]
        assert len(defaulted.middleware) == 1 + len(dramatiq.middleware.default_middleware)
        # And the stub broker holds none (its workers keep Dramatiq's queues)
        assert not any(isinstance(m, WorkQueues) for m in kinds["stub://"].middleware)
        # And a list that holds one already does not get a second
        again = RedisBroker(url=gcmc_redis_url, middleware=list(direct[0].middleware))
        assert [type(m) for m in again.middleware] == [WorkQueues, _Own]
    finally:
        for built in [*kinds.values(), *direct, defaulted]:
            built.close()


class _Own(dramatiq.Middleware):
    """A middleware of the caller's own, for the list a broker is given."""


class _Gate:
    """Actors of two priorities on one queue, the first message held at a gate."""

    def __init__(self, broker: RedisBroker) -> None:
        self.ran: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()

        @dramatiq.actor(broker=broker, queue_name="wq", actor_name="gate", priority=0)
        def gate() -> None:
            self.ran.append("gate")
            self.entered.set()
            self.release.wait(30)

        @dramatiq.actor(broker=broker, queue_name="wq", actor_name="urgent", priority=0)
        def urgent(n: int) -> None:
            self.ran.append(f"urgent {n}")

        @dramatiq.actor(broker=broker, queue_name="wq", actor_name="later", priority=100)
        def later(n: int) -> None:
            self.ran.append(f"later {n}")

        self.gate, self.urgent, self.later = gate, urgent, later

    def send_held_behind_the_gate(self) -> None:
        self.gate.send()
        for n in range(3):
            self.later.send(n)
            self.urgent.send(n)

    def start_worker(self, broker: RedisBroker) -> dramatiq.Worker:
        """One worker thread, its prefetch large enough to hold all seven messages, the six
        after the gate waiting in the work queue."""
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
        worker.queue_prefetch = 16
        worker.start()
        self.entered.wait(30)
        wait_until(lambda: worker.work_queue.qsize() == 6, what="six messages in the work queue")
        return worker


def test_a_worker_on_our_broker_runs_the_work_queue_in_priority_order(
    broker: tuple[RedisBroker, str],
) -> None:
    # Given a worker on our broker, its only thread held by the first message, and three
    # messages of a low priority interleaved with three of a high one behind it
    built, _ = broker
    actors = _Gate(built)
    actors.send_held_behind_the_gate()
    worker = actors.start_worker(built)
    try:
        # Then the worker and all its threads use our queue
        assert type(worker.work_queue) is WorkQueue
        assert all(thread.work_queue is worker.work_queue for thread in worker.workers)
        assert all(c.work_queue is worker.work_queue for c in worker.consumers.values())

        # When the gate opens
        actors.release.set()
        worker.join()

        # Then the high-priority messages ran first, each priority in the order sent
        assert actors.ran == [
            "gate", "urgent 0", "urgent 1", "urgent 2", "later 0", "later 1", "later 2",
        ]  # fmt: skip

        # And a queue declared after the worker started (the worker's own middleware, added
        # by Worker.start, starts its consumer) is consumed too
        seen = threading.Event()

        @dramatiq.actor(broker=built, queue_name="wq_late", actor_name="late")
        def late() -> None:
            seen.set()

        late.send()
        assert seen.wait(30)
    finally:
        actors.release.set()
        worker.stop()


def test_stopping_a_worker_requeues_the_messages_waiting_in_its_work_queue(
    broker: tuple[RedisBroker, str],
) -> None:
    # Given six messages waiting in the work queue behind one running at the gate
    built, namespace = broker
    actors = _Gate(built)
    actors.send_held_behind_the_gate()
    worker = actors.start_worker(built)

    # When the worker is stopped, and the running message finishes once its thread was told
    # to stop
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    wait_until(lambda: not worker.workers[0].running, what="the worker thread told to stop")
    actors.release.set()
    stopper.join(timeout=60)
    assert not stopper.is_alive()

    # Then only the gate ran, and the six are back on the Redis queue, none left in flight
    assert actors.ran == ["gate"]
    client = built.client
    waiting = client.lrange(f"{namespace}:wq", 0, -1)
    assert len(waiting) == 6
    assert len(set(waiting)) == 6
    assert client.hlen(f"{namespace}:wq.msgs") == 6
    assert client.scard(acks_key(namespace, built.broker_id, "wq")) == 0


def test_a_worker_on_our_rabbitmq_broker_gets_the_work_queue_and_delay_queues_too() -> None:
    name = f"gcmc_test_wq_{uuid.uuid4().hex[:8]}"
    built = RabbitmqBroker(url=RABBITMQ_URL, middleware=[])
    built.declare_queue(name)
    worker = dramatiq.Worker(built, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        assert type(worker.work_queue) is WorkQueue
        assert worker.workers[0].work_queue is worker.work_queue
        assert set(worker.consumers) == {name, f"{name}.DQ"}
        for consumer in worker.consumers.values():
            wait_until(
                lambda c=consumer: type(c.delay_queue) is WorkQueue,
                what=f"the delay queue of {consumer.queue_name}'s consumer thread",
            )
    finally:
        worker.stop()
        built.close()
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        channel = connection.channel()
        for queue_name in (name, f"{name}.DQ", f"{name}.XQ"):
            channel.queue_delete(queue_name)
        connection.close()


def test_the_consumer_threads_of_a_worker_on_our_broker_hold_delayed_messages_in_ours(
    broker: tuple[RedisBroker, str],
) -> None:
    # Given a worker on our broker, and a message sent with a delay
    built, _ = broker
    ran = threading.Event()

    @dramatiq.actor(broker=built, queue_name="wq_delayed", actor_name="delayed")
    def delayed() -> None:
        ran.set()

    worker = dramatiq.Worker(built, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        # Then each consumer thread, once booted, holds its delayed messages in our queue
        for consumer in worker.consumers.values():
            wait_until(
                lambda c=consumer: type(c.delay_queue) is WorkQueue,
                what=f"the delay queue of {consumer.queue_name}'s consumer thread",
            )
        # And the delayed message runs once due, and the worker's join sees it through
        delayed.send_with_options(delay=100)
        assert ran.wait(30)
        worker.join()
        assert all(c.delay_queue.unfinished_tasks == 0 for c in worker.consumers.values())
    finally:
        worker.stop()


def test_a_consumer_thread_skips_its_empty_delay_queue_and_drains_a_full_one_as_dramatiq(
    broker: tuple[RedisBroker, str],
) -> None:
    # Given a consumer thread (not started) with our delay queue installed
    built, _ = broker
    thread = ConsumerThread(
        broker=built, queue_name="wq_skip", prefetch=1, work_queue=WorkQueue(), worker_timeout=50
    )
    assert install_delay_queue(built, thread)
    delay_queue = thread.delay_queue
    assert type(delay_queue) is WorkQueue

    def untouched(*args: Any) -> Any:
        raise AssertionError("an empty delay queue was read")

    # When its delayed messages are handled with nothing delayed, the queue is not read
    delay_queue.get_nowait = untouched  # type: ignore[method-assign]
    thread.handle_delayed_messages()
    # And with a message not yet due, Dramatiq's method takes it and puts it back
    del delay_queue.get_nowait
    item = _WorkQueueItem(2**62, "not yet due")  # type: ignore[arg-type]
    delay_queue.put(item)
    thread.handle_delayed_messages()
    assert delay_queue.qsize() == 1
    assert delay_queue.get_nowait() is item
    # And after a connection error's fresh PriorityQueue, Dramatiq's method runs as before
    thread.delay_queue = queue.PriorityQueue()
    thread.delay_queue.put(item)
    thread.handle_delayed_messages()
    assert thread.delay_queue.qsize() == 1


def test_put_message_comes_out_in_priority_order_with_items_put_as_dramatiq_puts_them() -> None:
    work = WorkQueue()
    work.put(_WorkQueueItem(5, "item 5"))  # type: ignore[arg-type]
    work.put_message(5, "message 5")  # type: ignore[arg-type]
    work.put_message(0, "message 0")  # type: ignore[arg-type]
    taken = [work.get_nowait() for _ in range(3)]
    assert [(item.priority, item.message) for item in taken] == [
        (0, "message 0"), (5, "item 5"), (5, "message 5"),
    ]  # fmt: skip
    assert work.unfinished_tasks == 3


def test_a_consumer_thread_hands_a_message_on_at_its_actors_priority_and_the_rest_as_dramatiq(
    broker: tuple[RedisBroker, str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a consumer thread (not started) with our hand-off, and an actor of priority 7
    built, namespace = broker

    @dramatiq.actor(broker=built, queue_name="wq_hand", actor_name="handed", priority=7)
    def handed() -> None:
        pass

    work = WorkQueue()
    thread = ConsumerThread(
        broker=built, queue_name="wq_hand", prefetch=4, work_queue=work, worker_timeout=50
    )
    assert install_delay_queue(built, thread)
    assert install_hand_off(built, thread)
    thread.consumer = consumer = built.consume("wq_hand", prefetch=4, timeout=100)

    def fetched(actor_name: str, **options: Any) -> Any:
        built.enqueue(
            dramatiq.Message(
                queue_name="wq_hand", actor_name=actor_name, args=(), kwargs={}, options=options
            )
        )
        return next(message for message in consumer if message is not None)

    try:
        # When a message of the actor is handed on, it is on the work queue at priority 7
        message = fetched("handed")
        thread.handle_message(message)
        item = work.get_nowait()
        assert (item.priority, item.message) == (7, message)
        # And one with an eta of None loses it and is handed on too, as Dramatiq does
        message = fetched("handed", eta=None)
        thread.handle_message(message)
        assert work.get_nowait().message is message
        assert "eta" not in message.options
        # And one with an eta goes on the thread's delay queue, announced (before_delay_…)
        message = fetched("handed", eta=int(time.time() * 1000) + 60_000)
        thread.handle_message(message)
        assert work.qsize() == 0
        assert thread.delay_queue.get_nowait().message is message
        # And one of an actor nobody declared is failed and dead-lettered, logged
        message = fetched("nobody")
        thread.handle_message(message)
        assert message.failed
        assert work.qsize() == 0
        dead = built.client.zrange(f"{namespace}:wq_hand.XQ", 0, -1)
        assert dead == [message.options["redis_message_id"].encode()]
        assert "Received message for undefined actor 'nobody'" in caplog.text
        # And with the thread's logger at DEBUG, Dramatiq's method logs each hand-off
        thread.logger.setLevel(logging.DEBUG)
        with caplog.at_level(logging.DEBUG, logger=thread.logger.name):
            message = fetched("handed")
            thread.handle_message(message)
        assert work.get_nowait().message is message
        assert f"Pushing message {message.message_id!r} onto work queue." in caplog.text
    finally:
        thread.logger.setLevel(logging.NOTSET)
        consumer.close()


def test_a_consumer_thread_whose_work_queue_is_not_ours_keeps_dramatiqs_hand_off(
    broker: tuple[RedisBroker, str],
) -> None:
    built, _ = broker
    thread = ConsumerThread(
        broker=built,
        queue_name="wq_theirs",
        prefetch=1,
        work_queue=queue.PriorityQueue(),
        worker_timeout=50,
    )
    handle = thread.handle_message
    assert not install_hand_off(built, thread)
    assert thread.handle_message == handle

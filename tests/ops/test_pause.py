"""Pausing and resuming a queue, across real worker processes on Redis."""

from __future__ import annotations

import threading
import time

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from gcmc_jobs.errors import UnknownQueue
from gcmc_jobs.middleware.pause import Pause
from gcmc_jobs.middleware.stores import StubPauseStore
from gcmc_jobs.ops.pauses import pause_queue, pause_store_for, resume_queue
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.settings import Settings
from tests.support import WorkerProcess, wait_until


def test_a_paused_queue_holds_its_messages_while_another_flows_and_resume_drains_it(
    redis_settings: Settings,
    gcmc_redis_url: str,
    redis_client: redis.Redis,
    worker_process: WorkerProcess,
) -> None:
    namespace = redis_settings.namespace
    done_held, done_flowing = (
        f"{namespace}:test:done:ops_held",
        f"{namespace}:test:done:ops_flowing",
    )
    sender = RedisBroker(url=gcmc_redis_url, namespace=namespace)
    held = dramatiq.actor(lambda n: None, actor_name="held", queue_name="ops_held", broker=sender)
    flowing = dramatiq.actor(
        lambda n: None, actor_name="flowing", queue_name="ops_flowing", broker=sender
    )

    # Given ops_held is paused, and 20 messages are sent to each queue
    pause_store_for(redis_settings).pause("ops_held")
    for n in range(20):
        held.send(n)
        flowing.send(n)

    # When the worker has run every ops_flowing message
    wait_until(
        lambda: redis_client.llen(done_flowing) == 20,
        timeout_s=30,
        what="the 20 ops_flowing messages to run",
        diagnose=worker_process.describe,
    )
    # and has looked at the held ones (each was sent back to wait in the delay queue)
    wait_until(
        lambda: queue_stats(redis_settings, ["ops_held"])[0].delayed == 20,
        timeout_s=30,
        what="the 20 ops_held messages in the delay queue",
        diagnose=lambda: (
            f"{queue_stats(redis_settings, ['ops_held'])}\n{worker_process.describe()}"
        ),
    )

    # Then none of ops_held ran, and all 20 still wait in the broker
    assert redis_client.llen(done_held) == 0
    [stats] = queue_stats(redis_settings, ["ops_held"])
    assert stats.paused is True
    # (counted by Dramatiq message id: while the Pause middleware moves a message back to the
    # delay queue, its copy is enqueued before the original is acknowledged, so the counters
    # of queue_stats may count it twice for a moment; ready + in flight messages are the
    # values of .msgs, delayed ones of .DQ.msgs, read in one transaction)
    queue = f"{namespace}:ops_held"
    with redis_client.pipeline(transaction=True) as snapshot:
        snapshot.hvals(f"{queue}.msgs").hvals(f"{queue}.DQ.msgs")
        waiting, delayed = snapshot.execute()
    held_ids = {dramatiq.Message.decode(data).message_id for data in [*waiting, *delayed]}
    assert len(held_ids) == 20

    # When it is resumed, all of them run, each once
    pause_store_for(redis_settings).resume("ops_held")
    sender.join("ops_held", timeout=30_000)
    wait_until(
        lambda: redis_client.llen(done_held) == 20,
        timeout_s=30,
        what="the 20 ops_held messages to run after the resume",
        diagnose=worker_process.describe,
    )
    assert sorted(int(n) for n in redis_client.lrange(done_held, 0, -1)) == list(range(20))
    sender.close()


class _CountingStore(StubPauseStore):
    """A stub store counting its reads of the paused set."""

    reads = 0

    def paused(self) -> frozenset[str]:
        self.reads += 1
        return super().paused()


def test_pause_reads_the_store_at_most_once_per_refresh_period() -> None:
    now = [0.0]
    store = _CountingStore()
    pause = Pause(store, refresh_ms=1_000, clock=lambda: now[0])
    for _ in range(100):
        pause.paused_queues()
    assert store.reads == 1
    now[0] = 1.0
    pause.paused_queues()
    assert store.reads == 2


def test_a_store_that_cannot_be_read_keeps_the_last_known_set_until_the_next_period() -> None:
    class FlakyStore(StubPauseStore):
        reads = 0
        down = False

        def paused(self) -> frozenset[str]:
            self.reads += 1
            if self.down:
                raise ConnectionError("store down")
            return super().paused()

    now = [0.0]
    store = FlakyStore()
    store.pause("emails")
    pause = Pause(store, refresh_ms=1_000, clock=lambda: now[0])
    assert pause.paused_queues() == {"emails"}
    store.down = True
    now[0] = 1.5
    assert pause.paused_queues() == {"emails"}  # kept, and not asked again this period
    assert pause.paused_queues() == {"emails"}
    assert store.reads == 2
    store.down = False
    store.resume("emails")
    now[0] = 2.5
    assert pause.paused_queues() == frozenset()
    assert store.reads == 3


def test_threads_asking_when_the_set_is_stale_read_the_store_once() -> None:
    class SlowStore(StubPauseStore):
        reads = 0

        def paused(self) -> frozenset[str]:
            self.reads += 1
            gate.wait(1)  # every thread asks while the first read is under way
            return super().paused()

    gate = threading.Event()
    store = SlowStore()
    pause = Pause(store, refresh_ms=1_000, clock=lambda: 0.0)
    threads = [threading.Thread(target=pause.paused_queues) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # the others are waiting for the first read
    gate.set()
    for thread in threads:
        thread.join()
    assert store.reads == 1


def test_the_hook_sees_a_pause_once_the_cached_set_is_older_than_the_refresh_period() -> None:
    # Given a worker's Pause that read the (empty) paused set at t=0, and a queue paused
    # right after
    now = [0.0]
    store = _CountingStore()
    pause = Pause(store, refresh_ms=1_000, delay_ms=60_000, clock=lambda: now[0])
    broker = StubBroker(middleware=[pause])

    @dramatiq.actor(broker=broker, queue_name="hooked_q")
    def hooked() -> None: ...

    pause.before_process_message(broker, hooked.message())
    store.pause("hooked_q")
    # When messages arrive within the period, they run on the cached set (no store read)
    now[0] = 0.999
    pause.before_process_message(broker, hooked.message())
    assert (store.reads, broker.queues["hooked_q.DQ"].qsize()) == (1, 0)
    # Then the first one after it reads the store and is held back
    now[0] = 1.0
    with pytest.raises(dramatiq.middleware.SkipMessage):
        pause.before_process_message(broker, hooked.message())
    assert (store.reads, broker.queues["hooked_q.DQ"].qsize()) == (2, 1)
    # And a refresh period changed at run time is honoured: a resume is seen at once
    store.resume("hooked_q")
    pause.refresh_ms = 0
    pause.before_process_message(broker, hooked.message())
    assert (store.reads, broker.queues["hooked_q.DQ"].qsize()) == (3, 1)


def test_a_paused_message_is_sent_again_delayed_and_skipped_on_the_stub_broker() -> None:
    store = StubPauseStore()
    broker = StubBroker(middleware=[Pause(store, refresh_ms=0, delay_ms=60_000)])
    broker.emit_after("process_boot")
    runs: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="stub_q")
    def record(n: int) -> None:
        runs.append(n)

    store.pause("stub_q")
    record.send(1)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        # the copy waits in the delay queue, the original is acknowledged, nothing ran
        wait_until(
            lambda: (
                broker.queues["stub_q.DQ"].unfinished_tasks == 1
                and broker.queues["stub_q"].unfinished_tasks == 0
            ),
            timeout_s=30,
            what="the paused message's copy in the delay queue, the original acknowledged",
            diagnose=lambda: (
                f"unfinished: { {n: q.unfinished_tasks for n, q in broker.queues.items()} }"
            ),
        )
        assert runs == []
    finally:
        worker.stop()
        broker.close()


def test_pausing_an_unknown_queue_is_refused(redis_settings: Settings) -> None:
    with pytest.raises(UnknownQueue, match="gcmc_email"):
        pause_queue(redis_settings, "gcmc_emial")


def test_pause_and_resume_report_whether_anything_changed(redis_settings: Settings) -> None:
    assert pause_queue(redis_settings, "gcmc_email") is True
    assert pause_queue(redis_settings, "gcmc_email") is False
    assert resume_queue(redis_settings, "gcmc_email") is True
    assert resume_queue(redis_settings, "gcmc_email") is False

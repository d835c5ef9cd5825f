"""``WorkerStats``: the figures a worker process keeps of the messages it ran, and the
``WorkerRegistry`` hooks that feed it (issue 16, item 2)."""

from __future__ import annotations

import sys
import threading
import time

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from gcmc_jobs.brokers.hooks import implementing
from gcmc_jobs.middleware import WorkerRegistry, WorkerStats
from gcmc_jobs.middleware.worker_stats import rss_bytes


class Clock:
    """A clock the test moves by hand, seconds."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def run(stats: WorkerStats, clock: Clock, seconds: float, *, failed: bool = False) -> None:
    stats.started()
    clock.now += seconds
    stats.finished(failed=failed)


def test_counts_messages_and_failures_and_times_them() -> None:
    clock = Clock()
    stats = WorkerStats(window_ms=60_000, clock=clock)

    for ms in range(1, 21):  # 1 ms .. 20 ms
        run(stats, clock, ms / 1000, failed=ms % 5 == 0)

    snapshot = stats.snapshot()
    assert (snapshot["processed"], snapshot["failed"], snapshot["busy"]) == (20, 4, 0)
    assert snapshot["mean_ms"] == pytest.approx(10.5)
    assert snapshot["p95_ms"] == pytest.approx(19.0)  # nearest rank: the 19th of 20
    assert (snapshot["samples"], snapshot["window_ms"]) == (20, 60_000)


def test_the_times_cover_the_window_only_the_counts_everything() -> None:
    clock = Clock()
    stats = WorkerStats(window_ms=10_000, clock=clock)
    run(stats, clock, 0.500)
    clock.now += 30  # the slow message is now out of the 10 s window
    run(stats, clock, 0.002)

    snapshot = stats.snapshot()
    assert (snapshot["processed"], snapshot["samples"]) == (2, 1)
    assert snapshot["mean_ms"] == pytest.approx(2.0)

    clock.now += 30
    assert (stats.snapshot()["mean_ms"], stats.snapshot()["p95_ms"]) == (None, None)


def test_busy_counts_the_threads_running_a_message_and_a_skip_frees_one() -> None:
    stats = WorkerStats()
    started = threading.Barrier(3)
    release = threading.Event()

    def busy_thread(skip: bool) -> None:
        stats.started()
        started.wait()
        release.wait()
        if skip:
            stats.skipped()
        else:
            stats.finished(failed=False)

    threads = [threading.Thread(target=busy_thread, args=(n == 0,)) for n in range(2)]
    for thread in threads:
        thread.start()
    started.wait()
    assert stats.snapshot()["busy"] == 2
    release.set()
    for thread in threads:
        thread.join()
    assert (stats.snapshot()["busy"], stats.snapshot()["processed"]) == (0, 1)


def test_the_ring_keeps_the_last_messages_only() -> None:
    clock = Clock()
    stats = WorkerStats(ring_size=10, clock=clock)
    for _ in range(10):
        run(stats, clock, 1.0)
    for _ in range(10):
        run(stats, clock, 0.001)
    assert stats.snapshot()["mean_ms"] == pytest.approx(1.0)
    assert stats.snapshot()["processed"] == 20


def test_the_registry_times_messages_only_when_given_stats() -> None:
    plain, timed = WorkerRegistry(), WorkerRegistry(WorkerStats())
    for hook in ("before_process_message", "after_process_message", "after_skip_message"):
        assert implementing([plain], hook) == ()
        assert len(implementing([timed], hook)) == 1


def test_the_registrys_hooks_are_the_stats_own_methods_taking_a_hooks_arguments() -> None:
    # Given a registry with stats, and a clock the test moves
    clock = Clock()
    stats = WorkerStats(clock=clock)
    registry = WorkerRegistry(stats)

    # Then the broker calls the stats' methods themselves (one call a hook, issue 17)
    assert implementing([registry], "before_process_message") == (stats.started,)
    assert implementing([registry], "after_process_message") == (stats.finished,)
    assert implementing([registry], "after_skip_message") == (stats.skipped,)

    # And called as hooks they count as before: a success, a failure (an exception), a skip
    for outcome in ({"result": None}, {"exception": RuntimeError("boom")}, None):
        registry.before_process_message(None, object())
        clock.now += 0.010
        if outcome is None:
            registry.after_skip_message(None, object())
        else:
            registry.after_process_message(None, object(), **outcome)
    snapshot = stats.snapshot()
    assert (snapshot["processed"], snapshot["failed"], snapshot["busy"]) == (2, 1, 0)
    assert snapshot["mean_ms"] == pytest.approx(10.0)


def test_a_stub_broker_worker_feeds_the_stats_through_the_registry() -> None:
    stats = WorkerStats()
    broker = StubBroker(middleware=[WorkerRegistry(stats)])
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker)  # no Retries in this stack: a failure is not retried
    def work(fail: bool) -> None:
        if fail:
            raise RuntimeError("boom")

    for fail in (False, False, True):
        work.send(fail)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        broker.join(work.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()

    snapshot = stats.snapshot()
    assert (snapshot["processed"], snapshot["failed"], snapshot["busy"]) == (3, 1, 0)
    assert snapshot["samples"] == 3
    assert snapshot["mean_ms"] is not None


def test_rss_is_the_resident_memory_of_this_process() -> None:
    assert 1_000_000 < rss_bytes() < 100 * 1024**3


def test_many_threads_running_messages_at_once_give_exact_counts() -> None:
    # Given 8 threads, each counting in a state of its own, that run 300 messages (every
    # 7th failing) and then start one more and hold it
    stats = WorkerStats()
    holding = threading.Barrier(9)
    release = threading.Event()

    def worker() -> None:
        for n in range(300):
            stats.started()
            stats.finished(failed=n % 7 == 0)
        stats.started()
        holding.wait()
        release.wait()
        stats.finished(failed=True)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    holding.wait()
    # Then the snapshot sums every thread's counts, with the held messages busy
    snapshot = stats.snapshot()
    assert (snapshot["processed"], snapshot["failed"], snapshot["busy"]) == (2_400, 344, 8)
    assert (stats.processed, stats.failed, stats.busy) == (2_400, 344, 8)
    release.set()
    for thread in threads:
        thread.join()
    snapshot = stats.snapshot()
    assert (snapshot["processed"], snapshot["failed"], snapshot["busy"]) == (2_408, 352, 0)
    assert snapshot["samples"] == 2_408


def test_a_thread_that_ended_keeps_its_counts_in_every_later_snapshot() -> None:
    stats = WorkerStats()

    def worker(messages: int) -> None:
        for n in range(messages):
            stats.started()
            stats.finished(failed=n == 0)

    first = threading.Thread(target=worker, args=(3,))
    first.start()
    first.join()
    del first  # its Thread object gone too
    # When snapshots are taken after the thread ended (its counts folded in once), and
    # another thread comes and goes between them
    assert (stats.snapshot()["processed"], stats.snapshot()["failed"]) == (3, 1)
    second = threading.Thread(target=worker, args=(2,))
    second.start()
    second.join()
    worker(1)  # and this thread counts too
    # Then nothing is lost nor counted twice
    for _ in range(2):
        snapshot = stats.snapshot()
        assert (snapshot["processed"], snapshot["failed"], snapshot["busy"]) == (6, 3, 0)


def test_a_thread_that_ended_mid_message_stays_busy_as_before() -> None:
    stats = WorkerStats()
    thread = threading.Thread(target=stats.started)
    thread.start()
    thread.join()
    assert [stats.snapshot()["busy"] for _ in range(2)] == [1, 1]


def test_a_message_started_again_on_its_thread_is_one_busy_thread_and_one_message() -> None:
    stats = WorkerStats()
    stats.started()
    stats.started()  # a message started twice (no finish between) still holds one thread
    assert stats.snapshot()["busy"] == 1
    stats.finished(failed=False)
    stats.finished(failed=False)  # nothing running: not counted
    stats.skipped()
    assert (stats.snapshot()["processed"], stats.snapshot()["busy"]) == (1, 0)


def test_a_finished_or_skipped_message_never_started_on_this_thread_is_not_counted() -> None:
    stats = WorkerStats()
    stats.finished(failed=True)
    stats.skipped()
    assert (stats.processed, stats.failed, stats.busy) == (0, 0, 0)


def test_snapshots_taken_while_threads_run_never_see_half_a_message() -> None:
    # Given threads switching as often as the interpreter allows, and a reader taking
    # snapshots meanwhile
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    reader = threading.current_thread()

    def yielding_clock() -> float:  # lets the reader run inside each worker's update
        if threading.current_thread() is not reader:
            time.sleep(0)
        return time.perf_counter()

    stats = WorkerStats(clock=yielding_clock)
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            stats.started()
            time.sleep(0)  # the message runs: the reader sees it busy
            stats.finished(failed=False)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        # Then a message is busy or processed, never neither: busy + processed only grows,
        # and busy stays within the threads
        seen = 0
        for _ in range(1_000):
            time.sleep(0)
            snapshot = stats.snapshot()
            assert 0 <= snapshot["busy"] <= 4
            assert snapshot["processed"] + snapshot["busy"] >= seen
            seen = snapshot["processed"] + snapshot["busy"]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)
    assert stats.snapshot()["busy"] == 0

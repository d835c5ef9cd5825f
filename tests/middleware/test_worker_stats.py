"""``WorkerStats``: the figures a worker process keeps of the messages it ran, and the
``WorkerRegistry`` hooks that feed it (issue 16, item 2)."""

from __future__ import annotations

import threading

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

"""Deduplication: one run per dedup key, on the stub broker with the Redis and stub stores."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from gcmc_jobs.errors import DuplicateMessage
from gcmc_jobs.middleware import (
    ClaimResult,
    DeduplicatedActor,
    Deduplication,
    StubDedupStore,
)
from tests.middleware.conftest import FakeClock, middleware_of


def test_a_dedup_key_sent_100_times_concurrently_runs_once(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, unique: str
) -> None:
    runs: list[int] = []

    @dramatiq.actor(broker=gcmc_broker, dedup_key="reset:{user_id}")
    def reset(user_id: int) -> None:
        runs.append(user_id)

    sent: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(20)

    def send_five() -> None:
        start.wait()
        for _ in range(5):
            try:
                sent.append(reset.send(user_id=hash(unique) % 10_000).message_id)
            except DuplicateMessage as exc:
                refused.append(exc.key)

    threads = [threading.Thread(target=send_five) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gcmc_broker.join(reset.queue_name)
    worker.join()

    assert len(sent) == 1
    assert len(refused) == 99
    assert len(runs) == 1


def test_a_duplicate_reaching_the_worker_is_acked_not_run(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, unique: str
) -> None:
    # Given messages enqueued with a dedup key but without an enqueue-time claim
    # (as a broker without the Deduplication middleware would send them)
    runs: list[str] = []

    @dramatiq.actor(broker=gcmc_broker)
    def task(n: int) -> None:
        runs.append(f"ran {n}")

    for n in range(5):
        message = task.message_with_options(kwargs={"n": n}, dedup_key=f"k-{unique}")
        gcmc_broker.queues[task.queue_name].put(message.encode())
    # When the worker processes them
    gcmc_broker.join(task.queue_name)
    worker.join()
    # Then one ran and the others were acknowledged, not dead-lettered
    assert len(runs) == 1
    assert gcmc_broker.dead_letters == []


def test_a_key_is_released_when_its_message_fails_for_good_not_on_retry(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, unique: str
) -> None:
    attempts: list[int] = []
    dedup = middleware_of(gcmc_broker, Deduplication)

    @dramatiq.actor(broker=gcmc_broker, max_retries=1, min_backoff=1, max_backoff=1)
    def flaky() -> None:
        attempts.append(1)
        # While it is being retried, the key stays taken.
        assert dedup.store.claim(f"f-{unique}", "someone-else", 60_000) is ClaimResult.DUPLICATE
        raise RuntimeError("boom")

    flaky.send_with_options(dedup_key=f"f-{unique}")
    gcmc_broker.join(flaky.queue_name, fail_fast=False)
    worker.join()
    assert len(attempts) == 2
    # Failed for good: a later send runs.
    flaky.send_with_options(dedup_key=f"f-{unique}")
    gcmc_broker.join(flaky.queue_name, fail_fast=False)
    worker.join()
    assert len(attempts) == 4


def test_a_succeeded_key_stays_done_until_its_ttl(unique: str) -> None:
    clock = FakeClock()
    store = StubDedupStore(clock=clock)
    assert store.claim(unique, "m1", 1_000) is ClaimResult.CLAIMED
    store.complete(unique, "m1", 5_000)
    assert store.claim(unique, "m2", 1_000) is ClaimResult.DUPLICATE
    assert store.claim(unique, "m1", 1_000) is ClaimResult.DONE
    clock.advance(5.001)
    assert store.claim(unique, "m2", 1_000) is ClaimResult.CLAIMED


@pytest.mark.parametrize("backend", ["redis", "stub"])
def test_claim_many_claims_in_one_call_and_first_in_batch_wins(
    gcmc_broker: dramatiq.Broker, backend: str, unique: str
) -> None:
    dedup = middleware_of(gcmc_broker, Deduplication)
    store = dedup.store if backend == "redis" else StubDedupStore()
    claims = [
        (f"a-{unique}", "m1", 60_000),
        (f"a-{unique}", "m2", 60_000),
        (f"b-{unique}", "m3", 60_000),
    ]
    assert store.claim_many(claims) == [
        ClaimResult.CLAIMED,
        ClaimResult.DUPLICATE,
        ClaimResult.CLAIMED,
    ]
    store.release(f"a-{unique}", "m2")  # not the owner: no-op
    assert store.claim(f"a-{unique}", "m4", 60_000) is ClaimResult.DUPLICATE
    store.release(f"a-{unique}", "m1")
    assert store.claim(f"a-{unique}", "m4", 60_000) is ClaimResult.CLAIMED


def test_bulk_claim_then_enqueue_sends_each_key_once(
    gcmc_broker: dramatiq.Broker, worker: dramatiq.Worker, unique: str
) -> None:
    runs: list[int] = []

    @dramatiq.actor(broker=gcmc_broker, dedup_key=lambda m: f"bulk-{unique}-{m.kwargs['n'] % 3}")
    def job(n: int) -> None:
        runs.append(n)

    dedup = middleware_of(gcmc_broker, Deduplication)
    messages = [job.message(n=n) for n in range(9)]
    verdicts = dedup.claim_many(gcmc_broker, messages)
    assert verdicts == [True, True, True] + [False] * 6
    for message, go in zip(messages, verdicts, strict=True):
        if go:
            gcmc_broker.enqueue(message)
    gcmc_broker.join(job.queue_name)
    worker.join()
    assert sorted(runs) == [0, 1, 2]


def test_a_deduplicated_actor_send_returns_instead_of_raising(unique: str) -> None:
    broker = StubBroker(middleware=[Deduplication(StubDedupStore())])
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, actor_class=DeduplicatedActor, dedup_key="x-{n}")
    def job(n: int) -> Any:
        return n

    first = job.send(n=1)
    second = job.send(n=1)
    assert second.message_id != first.message_id
    assert len(broker.queues[job.queue_name].queue) == 1
    broker.close()


def test_a_template_missing_an_argument_fails_in_the_caller(gcmc_broker: dramatiq.Broker) -> None:
    @dramatiq.actor(broker=gcmc_broker, dedup_key="reset:{user_id}")
    def reset(email: str) -> None: ...

    with pytest.raises(KeyError):
        reset.send(email="a@example.com")


def test_the_completion_batcher_writes_everything_in_batches_by_close() -> None:
    from gcmc_jobs.middleware._batching import Batcher

    written: list[list[int]] = []
    batcher: Batcher[int] = Batcher(written.append, wait_ms=5, max_items=3)
    for n in range(7):
        batcher.put(n)
    batcher.close()
    assert sorted(n for batch in written for n in batch) == list(range(7))
    assert all(len(batch) <= 3 for batch in written)

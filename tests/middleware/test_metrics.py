"""Metrics: message states, duplicates, rate limits, emails, on gcmc-jobs' own registry."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.request

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gcmc_jobs.errors import DuplicateMessage
from gcmc_jobs.middleware import Deduplication, Metrics, StubDedupStore, metrics
from gcmc_jobs.middleware.metrics import REGISTRY


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_message_states_duplicates_and_emails_are_counted(unique: str) -> None:
    broker = StubBroker(middleware=[Retries(), Deduplication(StubDedupStore()), Metrics()])
    broker.emit_after("process_boot")
    actor_name = f"metered_{unique}"

    @dramatiq.actor(broker=broker, actor_name=actor_name, max_retries=0, dedup_key="k-{n}")
    def metered(n: int) -> None:
        if n < 0:
            raise ValueError("negative")

    worker = dramatiq.Worker(broker, worker_timeout=20)
    worker.start()
    try:
        metered.send(n=1)
        metered.send(n=-1)
        with contextlib.suppress(DuplicateMessage):
            metered.send(n=1)
        broker.join(metered.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    metrics.email_sent("password_reset", "sent")

    labels = {"actor": actor_name, "queue": "default"}
    assert _value("gcmc_jobs_messages_total", **labels, state="succeeded") == 1
    assert _value("gcmc_jobs_messages_total", **labels, state="failed") == 1
    assert _value("gcmc_jobs_duplicates_skipped_total", actor=actor_name) == 1
    assert _value("gcmc_jobs_message_duration_seconds_count", actor=actor_name) == 2
    assert _value("gcmc_jobs_emails_total", kind="password_reset", status="sent") >= 1


def test_the_worker_exporter_serves_the_registry_on_the_next_free_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        middleware = Metrics(port=port, host="127.0.0.1")
        broker = StubBroker(middleware=[middleware])
        middleware.after_worker_boot(broker, dramatiq.Worker(broker))
        assert middleware.server_port is not None
        assert middleware.server_port > port
        with urllib.request.urlopen(f"http://127.0.0.1:{middleware.server_port}/") as response:
            body = response.read()
    assert b"gcmc_jobs_emails_total" in body
    assert body.startswith(generate_latest(REGISTRY)[:20])


def test_messages_counted_on_many_threads_reach_the_registry_once_each(unique: str) -> None:
    # Given the hooks of messages run on four threads (each counts in a table of its own)
    middleware = Metrics()
    broker = StubBroker(middleware=[middleware])
    actor_name = f"tallied_{unique}"

    @dramatiq.actor(broker=broker, actor_name=actor_name)
    def tallied() -> None: ...

    def run(n: int) -> None:
        for _ in range(n):
            message = tallied.message()
            middleware.before_process_message(broker, message)
            middleware.after_process_message(broker, message)

    threads = [threading.Thread(target=run, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    labels = {"actor": actor_name, "queue": "default"}
    # Then a collection sees every one of them
    assert _value("gcmc_jobs_messages_total", **labels, state="started") == 100
    assert _value("gcmc_jobs_messages_total", **labels, state="succeeded") == 100
    assert _value("gcmc_jobs_message_duration_seconds_count", actor=actor_name) == 100
    # And the next collection adds only what was counted since, on any thread
    run(10)
    threads = [threading.Thread(target=run, args=(5,))]
    threads[0].start()
    threads[0].join()
    assert _value("gcmc_jobs_messages_total", **labels, state="succeeded") == 115
    assert _value("gcmc_jobs_message_duration_seconds_count", actor=actor_name) == 115
    assert _value("gcmc_jobs_message_duration_seconds_bucket", actor=actor_name, le="+Inf") == 115
    assert _value("gcmc_jobs_message_duration_seconds_sum", actor=actor_name) > 0


def test_durations_fall_in_the_buckets_prometheus_observe_puts_them_in(unique: str) -> None:
    # Given durations on and around the bucket bounds, tallied by Metrics and observed by a
    # plain prometheus Histogram with the same bounds
    seconds = [0.0, 0.005, 0.0050001, 0.01, 0.3, 1, 600, 601.5]
    reference = Histogram(
        "reference_seconds", "same bounds", buckets=metrics._BOUNDS, registry=CollectorRegistry()
    )
    middleware = Metrics()
    actor_name = f"timed_{unique}"
    for value in seconds:
        middleware._observe(actor_name, value)
        reference.observe(value)
    # Then every bucket, the count and the sum are the same
    for sample in reference.collect()[0].samples:
        if sample.name.endswith("_created"):
            continue
        name = sample.name.replace("reference_seconds", "gcmc_jobs_message_duration_seconds")
        assert _value(name, actor=actor_name, **sample.labels) == sample.value, sample


def _samples(registry: CollectorRegistry, actor: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for metric in registry.collect()
        for sample in metric.samples
        if sample.labels.get("actor") == actor and not sample.name.endswith(("_created", "_sum"))
    ]


def test_the_worker_hooks_expose_what_plain_prometheus_updates_would(unique: str) -> None:
    # Given a plain registry updated as the hooks' figures would be, one update at a time
    reference = CollectorRegistry()
    messages = Counter("gcmc_jobs_messages", "", ["actor", "queue", "state"], registry=reference)
    duration = Histogram(
        "gcmc_jobs_message_duration_seconds", "", ["actor"], buckets=metrics._BOUNDS,
        registry=reference,
    )  # fmt: skip
    middleware = Metrics()
    broker = StubBroker(middleware=[middleware])
    actor_name = f"exposed_{unique}"

    @dramatiq.actor(broker=broker, actor_name=actor_name, queue_name="exposed")
    def exposed() -> None: ...

    # When messages start, succeed and fail on the worker hooks (one from the delay queue)
    outcomes = [None, ValueError("x"), None]
    for i, outcome in enumerate(outcomes):
        message = exposed.message()
        if i == 2:
            message = message.copy(queue_name="exposed.DQ")
        middleware.before_process_message(broker, message)
        middleware.after_process_message(broker, message, exception=outcome)
        messages.labels(actor=actor_name, queue="exposed", state="started").inc()
        state = "succeeded" if outcome is None else "errored"
        messages.labels(actor=actor_name, queue="exposed", state=state).inc()
        if i == 0:  # a state not counted yet has no sample
            states = {sample[1].get("state") for sample in _samples(REGISTRY, actor_name)}
            assert states == {"started", "succeeded", None}
    for _ in outcomes:
        duration.labels(actor=actor_name).observe(0.0)
    # Then the exposition has the same samples (the durations, near 0, in the first bucket)
    assert _samples(REGISTRY, actor_name) == _samples(reference, actor_name)
    assert 0 < _value("gcmc_jobs_message_duration_seconds_sum", actor=actor_name) < 1


def test_an_after_hook_counts_its_own_message_not_the_one_its_thread_started(
    unique: str,
) -> None:
    # Given two actors on two queues, and the after hook handed the message whose before
    # hook ran on this thread, then one whose before hook did not
    middleware = Metrics()
    broker = StubBroker(middleware=[middleware])

    @dramatiq.actor(broker=broker, actor_name=f"first_{unique}", queue_name="first")
    def first() -> None: ...

    @dramatiq.actor(broker=broker, actor_name=f"second_{unique}", queue_name="second")
    def second() -> None: ...

    started, other = first.message(), second.message()
    middleware.before_process_message(broker, started)
    middleware.after_process_message(broker, started)
    middleware.after_process_message(broker, started, exception=ValueError("again"))
    middleware.before_process_message(broker, started)
    middleware.after_process_message(broker, other)  # its before hook never ran
    middleware.after_process_message(broker, started)

    # Then each outcome and duration is counted for its own message's actor and queue
    def count(actor: str, queue: str, state: str) -> float:
        return _value("gcmc_jobs_messages_total", actor=actor, queue=queue, state=state)

    assert count(f"first_{unique}", "first", "started") == 2
    assert count(f"first_{unique}", "first", "succeeded") == 2
    assert count(f"first_{unique}", "first", "errored") == 1
    assert count(f"second_{unique}", "second", "succeeded") == 1
    assert count(f"first_{unique}", "second", "succeeded") == 0
    # one duration per attempt started: the second actor's attempt took the first's start
    # time, as before (a before hook that ran for another message)
    assert _value("gcmc_jobs_message_duration_seconds_count", actor=f"first_{unique}") == 1
    assert _value("gcmc_jobs_message_duration_seconds_count", actor=f"second_{unique}") == 1

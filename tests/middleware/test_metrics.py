"""Metrics: message states, duplicates, rate limits, emails, on gcmc-jobs' own registry."""

from __future__ import annotations

import contextlib
import socket
import urllib.request

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from prometheus_client import generate_latest

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

"""``/metrics``: the middleware's Prometheus registry plus queue gauges and the live workers'
exporters, read at scrape time.

The message counters (``gcmc_jobs_messages_total`` and the other counters of
:mod:`gcmc_jobs.middleware.metrics`) are counted in the process that handles the message:
each worker serves its own on its exporter (``GCMC_JOBS_METRICS_PORT``); this process has
only what it did itself (the messages it enqueued). Rather than sum other processes' figures
(lost at each restart, double-counted when scraped too), ``serve`` lists where they are:
``gcmc_jobs_worker_info{worker, host, pid, metrics}``, one sample per live worker, its
``metrics`` label the exporter's URL (empty: that worker exports nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gcmc_jobs.middleware.metrics import REGISTRY
from gcmc_jobs.ops.live_workers import live_workers
from gcmc_jobs.ops.mail_circuit import mail_circuit_state
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.settings import Settings

__all__ = [
    "WORKER_INFO_HELP",
    "MailCircuitCollector",
    "QueueCollector",
    "WorkerCollector",
    "render_metrics",
]

#: The HELP text of ``gcmc_jobs_worker_info``: says where the message counters are.
WORKER_INFO_HELP = (
    "A live consuming worker process (value 1). The message counters "
    "(gcmc_jobs_messages_total, gcmc_jobs_message_duration_seconds, "
    "gcmc_jobs_dead_lettered_total, ...) are counted in each worker and served by its own "
    "exporter (GCMC_JOBS_METRICS_PORT), at the URL of the metrics label (empty: that worker "
    "exports nothing); this endpoint has only this process's own figures."
)


class QueueCollector(Collector):
    """``gcmc_queue_messages{queue, state}`` and ``gcmc_queue_oldest_age_seconds{queue}``,
    read from the broker on each scrape (one Redis round trip)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        messages = GaugeMetricFamily(
            "gcmc_queue_messages", "Messages per queue and state.", labels=["queue", "state"]
        )
        age = GaugeMetricFamily(
            "gcmc_queue_oldest_age_seconds",
            "Age of the oldest ready message per queue.",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "gcmc_queue_paused", "1 when the queue is paused.", labels=["queue"]
        )
        try:
            stats = queue_stats(self.settings, timeout_ms=self.settings.health_timeout_ms)
        except Exception:  # a scrape must not fail because the broker is down
            stats = []
        for s in stats:
            for state in ("ready", "delayed", "in_flight", "dead"):
                value = getattr(s, state)
                if value is not None:
                    messages.add_metric([s.name, state], value)
            if s.oldest_age_ms is not None:
                age.add_metric([s.name], s.oldest_age_ms / 1000)
            paused.add_metric([s.name], 1 if s.paused else 0)
        yield messages
        yield age
        yield paused


class WorkerCollector(Collector):
    """``gcmc_jobs_worker_info{worker, host, pid, metrics}``: each live worker and its
    exporter's URL, read on each scrape (two Redis reads; none on other brokers)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        info = GaugeMetricFamily(
            "gcmc_jobs_worker_info", WORKER_INFO_HELP, labels=["worker", "host", "pid", "metrics"]
        )
        try:
            workers = live_workers(self.settings, datetime.now(UTC)).workers
        except Exception:  # a scrape must not fail because the broker is down
            workers = []
        for w in workers:
            info.add_metric(
                [w["id"], str(w["host"] or ""), str(w["pid"] or ""), w["metrics"] or ""], 1
            )
        yield info


class MailCircuitCollector(Collector):
    """``gcmc_mail_circuit_state{state}`` (1 for the current state, 0 for the others) and
    ``gcmc_mail_circuit_failures``, ``gcmc_mail_circuit_trips`` and
    ``gcmc_mail_circuit_probes``: the breaker every worker shares, read on each scrape (one
    Redis read). Nothing is exported when the store cannot be read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        try:
            state = mail_circuit_state(self.settings)
        except Exception:  # a scrape must not fail because Redis is down
            return
        current = GaugeMetricFamily(
            "gcmc_mail_circuit_state",
            "The mail server's circuit breaker: 1 for its state (closed, open: email held, "
            "half_open: critical email first).",
            labels=["state"],
        )
        for name in ("closed", "half_open", "open"):
            current.add_metric([name], 1 if state.state == name else 0)
        yield current
        yield GaugeMetricFamily(
            "gcmc_mail_circuit_failures",
            "Mail delivery failures in a row (connection errors, 4xx replies).",
            value=state.failures,
        )
        yield GaugeMetricFamily(
            "gcmc_mail_circuit_trips", "Times the mail circuit breaker opened.", value=state.trips
        )
        yield GaugeMetricFamily(
            "gcmc_mail_circuit_probes", "Probes of the mail server made.", value=state.probes
        )


def render_metrics(queue_registry: CollectorRegistry) -> bytes:
    """The text exposition of the middleware's registry followed by ``queue_registry``."""
    return generate_latest(REGISTRY) + generate_latest(queue_registry)

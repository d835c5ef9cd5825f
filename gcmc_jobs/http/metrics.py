"""``/metrics``: the middleware's Prometheus registry plus queue gauges read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gcmc_jobs.middleware.metrics import REGISTRY
from gcmc_jobs.ops.queue_stats import queue_stats
from gcmc_jobs.settings import Settings

__all__ = ["QueueCollector", "render_metrics"]


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


def render_metrics(queue_registry: CollectorRegistry) -> bytes:
    """The text exposition of the middleware's registry followed by ``queue_registry``."""
    return generate_latest(REGISTRY) + generate_latest(queue_registry)

"""Which consuming workers are alive, from the broker's heartbeats and the worker registry.

A live worker is a broker id with a heartbeat within ``broker_heartbeat_timeout_ms``
(Dramatiq's ``{ns}:__heartbeats__``) *and* an entry in the registry
(:class:`~gcmc_jobs.middleware.worker_registry.WorkerRegistry`, written at worker boot,
removed at shutdown). Dramatiq writes a heartbeat on every enqueue too, so a host process
that only sends has one: without the registry entry it is counted as not consuming. Read by
the ``workers`` health check and by ``serve``'s ``/metrics`` (each worker's exporter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.redis_keys import heartbeats_key, workers_key
from gcmc_jobs.settings import Settings

__all__ = ["LiveWorkers", "live_workers"]


@dataclass(frozen=True)
class LiveWorkers:
    """The live consuming workers (``id``, ``last_seen_ms_ago``, ``host``, ``pid``,
    ``queues``, ``threads``, ``metrics``: its exporter's URL or None, and ``stats``: its last
    reported figures or None, see
    :class:`~gcmc_jobs.middleware.worker_registry.WorkerRegistry`), and how many other
    processes have a fresh heartbeat (``not_consuming``)."""

    workers: list[dict[str, Any]] = field(default_factory=list)
    not_consuming: int = 0


def live_workers(settings: Settings, now: datetime) -> LiveWorkers:
    """The workers alive at ``now`` on the Redis broker of ``settings`` (two Redis reads);
    none on other brokers (they keep no heartbeats)."""
    if settings.broker_kind != "redis":
        return LiveWorkers()
    now_ms = int(now.timestamp() * 1000)
    client = redis_client(
        settings.broker_url.get_secret_value(), timeout_ms=settings.health_timeout_ms
    )
    try:
        beats = client.zrangebyscore(
            heartbeats_key(settings.namespace),
            now_ms - settings.broker_heartbeat_timeout_ms,
            "+inf",
            withscores=True,
        )
        registry = client.hgetall(workers_key(settings.namespace))
    finally:
        client.close()
    workers = []
    not_consuming = 0
    for raw_id, score in beats:
        raw_entry = registry.get(raw_id)
        if raw_entry is None:  # no registry entry: a sender, or a stopped worker
            not_consuming += 1
            continue
        entry = json.loads(raw_entry)
        workers.append(
            {
                "id": raw_id.decode(),
                "last_seen_ms_ago": max(0, now_ms - int(score)),
                "host": entry.get("host"),
                "pid": entry.get("pid"),
                "queues": entry.get("queues"),
                "threads": entry.get("threads"),
                "metrics": entry.get("metrics"),
                "stats": entry.get("stats"),
            }
        )
    return LiveWorkers(workers, not_consuming)

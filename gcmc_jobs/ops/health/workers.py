"""The ``workers`` health check: which workers are alive, and the queues they consume.

A live worker is a broker id with a heartbeat within ``broker_heartbeat_timeout_ms``
(Dramatiq's ``{ns}:__heartbeats__``) *and* an entry in the registry
(:class:`~gcmc_jobs.middleware.worker_registry.WorkerRegistry`, written at worker boot,
removed at shutdown). Dramatiq writes a heartbeat on every enqueue too, so a host process
that only sends has one: without the registry entry it is counted as a sender, not a worker.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine

from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.redis_keys import heartbeats_key, workers_key
from gcmc_jobs.settings import Settings

__all__ = ["check_workers"]


def check_workers(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """A warning when no consuming Redis worker sent a heartbeat within
    ``broker_heartbeat_timeout_ms``; lists each live one's host, pid and queues, and counts
    the other heartbeats (``not_consuming``: no registry entry, so a process that only
    sends, or a worker that has just stopped)."""
    url = settings.broker_url.get_secret_value()
    if settings.broker_kind != "redis":
        return CheckResult(
            "ok", "heartbeats exist on Redis only; see each queue's consumers", {"workers": []}
        )
    now_ms = int(now.timestamp() * 1000)
    client = redis_client(url, timeout_ms=settings.health_timeout_ms)
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
            }
        )
    data = {"workers": workers, "not_consuming": not_consuming}
    if not workers:
        return CheckResult(
            "warning",
            "no live worker (no consuming worker's heartbeat in "
            f"{settings.broker_heartbeat_timeout_ms} ms; {not_consuming} heartbeat(s) of "
            "processes that do not consume)",
            data,
        )
    return CheckResult("ok", f"{len(workers)} live worker(s)", data)

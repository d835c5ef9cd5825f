"""The ``workers`` health check: which workers are alive, and the queues they consume."""

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
    """A warning when no Redis worker sent a heartbeat within
    ``broker_heartbeat_timeout_ms``; lists each live one's host, pid and queues."""
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
    for raw_id, score in beats:
        entry = json.loads(registry.get(raw_id, b"{}"))
        workers.append(
            {
                "id": raw_id.decode(),
                "last_seen_ms_ago": max(0, now_ms - int(score)),
                "host": entry.get("host"),
                "pid": entry.get("pid"),
                "queues": entry.get("queues"),
            }
        )
    if not workers:
        return CheckResult(
            "warning",
            f"no live worker (no heartbeat in {settings.broker_heartbeat_timeout_ms} ms)",
            {"workers": []},
        )
    return CheckResult("ok", f"{len(workers)} live worker(s)", {"workers": workers})

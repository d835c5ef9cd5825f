"""The last hours' activity, minute by minute, as the workers recorded it in Redis.

Reads the per-minute hashes :func:`gcmc_jobs.middleware.activity.record_activity` writes (one
pipelined round trip for the whole range) and returns them as columns the dashboard's charts
plot directly. A minute no worker reported is ``None`` (a gap in the chart, not a zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gcmc_jobs.middleware.activity import MINUTE_MS
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.redis_keys import activity_key
from gcmc_jobs.settings import Settings

__all__ = ["MAX_MINUTES", "Activity", "activity"]

#: The longest range kept (24 h).
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class Activity:
    """``minutes``: each minute's start (epoch seconds, oldest first); ``processed`` and
    ``failed``: the messages the workers finished in it (None: no report); ``depth``: per
    queue, its ready + delayed messages at the minute's last report (None: no report)."""

    minutes: list[int] = field(default_factory=list)
    processed: list[int | None] = field(default_factory=list)
    failed: list[int | None] = field(default_factory=list)
    depth: dict[str, list[int | None]] = field(default_factory=dict)


def activity(settings: Settings, now: datetime, *, minutes: int = MAX_MINUTES) -> Activity:
    """The ``minutes`` (1 to :data:`MAX_MINUTES`) up to and including the one of ``now``;
    empty on brokers other than Redis (their workers keep no figures)."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be between 1 and {MAX_MINUTES}, not {minutes}")
    if settings.broker_kind != "redis":
        return Activity()
    last = int(now.timestamp() * 1000) // MINUTE_MS
    buckets = list(range(last - minutes + 1, last + 1))
    client = redis_client(
        settings.broker_url.get_secret_value(), timeout_ms=settings.health_timeout_ms
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for minute in buckets:
                pipe.hgetall(activity_key(settings.namespace, minute))
            hashes = pipe.execute()
    finally:
        client.close()
    result = Activity(minutes=[m * MINUTE_MS // 1000 for m in buckets])
    queues = sorted({k.decode()[6:] for h in hashes for k in h if k.startswith(b"depth:")})
    for name in queues:
        result.depth[name] = []
    for h in hashes:
        result.processed.append(int(h[b"processed"]) if b"processed" in h else None)
        result.failed.append(int(h[b"failed"]) if b"failed" in h else None)
        for name in queues:
            value = h.get(f"depth:{name}".encode())
            result.depth[name].append(None if value is None else int(value))
    return result

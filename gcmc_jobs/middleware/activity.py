"""Per-minute activity in Redis: messages processed and failed, and each queue's depth.

The dashboard's throughput, failure and queue-depth charts read it. Each Redis worker's
:class:`~gcmc_jobs.middleware.worker_registry.WorkerRegistry` adds, on its periodic stats
report (never per message), what it processed and failed since its previous report to the
hash of the current minute (:func:`gcmc_jobs.redis_keys.activity_key`, ``HINCRBY``, so the
workers' figures add up) and writes the depth (ready + delayed) of the queues it consumes
(``HSET depth:<queue>``: the last report of the minute wins). Every hash expires
:data:`ACTIVITY_TTL_MS` after its last write, so Redis holds at most 1,500 small hashes
(25 h of minutes) whatever the traffic. :func:`gcmc_jobs.ops.activity.activity` reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gcmc_jobs.redis_keys import activity_key, messages_key, queue_key

__all__ = ["ACTIVITY_TTL_MS", "MINUTE_MS", "record_activity"]

#: One bucket's length, ms.
MINUTE_MS = 60_000
#: How long a minute's hash is kept after its last write, ms (25 h: the charts show 24 h).
ACTIVITY_TTL_MS = 25 * 3_600_000


def record_activity(
    client: Any,
    namespace: str,
    *,
    now_ms: int,
    processed: int,
    failed: int,
    queues: Iterable[str],
) -> None:
    """Add ``processed`` and ``failed`` (counts since the previous report) to the minute of
    ``now_ms`` and set the depth of ``queues``: two Redis round trips, whatever the counts."""
    names = list(queues)
    with client.pipeline(transaction=False) as reads:
        for name in names:
            reads.llen(queue_key(namespace, name))
            reads.hlen(messages_key(namespace, f"{name}.DQ"))
        lengths = reads.execute() if names else []
    key = activity_key(namespace, now_ms // MINUTE_MS)
    with client.pipeline(transaction=False) as writes:
        writes.hincrby(key, "processed", processed)
        writes.hincrby(key, "failed", failed)
        for i, name in enumerate(names):
            writes.hset(key, f"depth:{name}", int(lengths[2 * i]) + int(lengths[2 * i + 1]))
        writes.pexpire(key, ACTIVITY_TTL_MS)
        writes.execute()

"""``WorkerRegistry``: each Redis worker writes down which queues it consumes, and how it is
doing.

Dramatiq's Redis broker records a heartbeat per worker process (``heartbeats_key``: a sorted
set of broker ids scored by the last contact, in ms) but not what the worker consumes. At
boot this middleware adds ``{broker_id: {"host", "pid", "queues", "threads", "started_at",
"metrics"}}`` to the hash :func:`gcmc_jobs.redis_keys.workers_key` and removes it at
shutdown; ``gcmc-jobs health`` and ``serve``'s ``/metrics`` join the two. ``metrics`` is the
address of the process's Prometheus exporter (:meth:`Metrics.start_exporter`: Dramatiq
runs the ``after_*`` hooks last middleware first; None without ``GCMC_JOBS_METRICS_PORT``).

With ``stats`` (a :class:`~gcmc_jobs.middleware.worker_stats.WorkerStats`), it also times
every message in the process (no Redis call per message) and a background thread rewrites
the entry every ``interval_ms`` with ``stats``: busy threads, messages processed and
failed, mean and p95 processing time over the stats' window, resident memory
(``rss_bytes``) and ``reported_at`` (epoch ms); the same report adds the messages processed
and failed since the previous one, and the depth of its queues, to the current minute's
activity hash (:func:`gcmc_jobs.middleware.activity.record_activity`, the dashboard's
charts; a worker shutting down adds what it finished since its last report). The entry's
liveness stays Dramatiq's heartbeat: a worker killed without a shutdown keeps its entry,
and readers drop it once its heartbeat is older than the heartbeat timeout
(:func:`gcmc_jobs.ops.live_workers.live_workers`). On other brokers it does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from dramatiq import Middleware

from gcmc_jobs.middleware.activity import record_activity
from gcmc_jobs.middleware.metrics import Metrics
from gcmc_jobs.middleware.worker_stats import WorkerStats, rss_bytes
from gcmc_jobs.redis_keys import workers_key

__all__ = ["WorkerRegistry"]

logger = logging.getLogger(__name__)


class WorkerRegistry(Middleware):
    """Register a Redis worker's queues at boot (and its figures every ``interval_ms`` when
    given ``stats``); unregister at shutdown.

    Parameters:
      stats: the process's figures, fed by this middleware's per-message hooks (which exist
        only when it is given); None: no figures, no per-message work.
      interval_ms: how often the entry is rewritten with ``stats``, ms (5,000).
    """

    def __init__(self, stats: WorkerStats | None = None, *, interval_ms: int = 5_000) -> None:
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be > 0, not {interval_ms}")
        self.stats = stats
        self.interval_ms = interval_ms
        self._entry: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._reporter: threading.Thread | None = None
        # The counts already added to the activity hashes (the report adds the difference).
        self._reported = (0, 0)
        if stats is not None:
            # Hooks set on the instance: without stats the broker calls none of them
            # (gcmc_jobs.brokers.hooks.implementing). They are the stats' own methods, which
            # take a hook's arguments: one call a hook, not a method of this class calling
            # the stats' (issue 17).
            self.before_process_message = stats.started  # type: ignore[method-assign,assignment]
            self.after_process_message = stats.finished  # type: ignore[method-assign,assignment]
            self.after_skip_message = stats.skipped  # type: ignore[method-assign,assignment]

    # -- boot and shutdown -----------------------------------------------------------------

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        client = getattr(broker, "client", None)
        broker_id = getattr(broker, "broker_id", None)
        if client is None or broker_id is None:
            return
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        self._entry = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": sorted(q for q in queues if not q.endswith(".DQ")),
            "threads": getattr(worker, "worker_threads", None),
            "started_at": int(time.time() * 1000),
            "metrics": next(
                (m.start_exporter() for m in broker.middleware if isinstance(m, Metrics)), None
            ),
        }
        try:
            self._write(broker)
        except Exception:
            logger.exception("cannot register the worker in Redis")
        if self.stats is not None:
            self._stop.clear()
            self._reporter = threading.Thread(
                target=self._report, args=(broker,), name="gcmc-worker-stats", daemon=True
            )
            self._reporter.start()

    def _write(self, broker: Any) -> None:
        entry = dict(self._entry or {})
        snapshot = None
        if self.stats is not None:
            snapshot = self.stats.snapshot()
            entry["stats"] = {
                **snapshot,
                "rss_bytes": rss_bytes(),
                "reported_at": int(time.time() * 1000),
            }
        broker.client.hset(workers_key(broker.namespace), broker.broker_id, json.dumps(entry))
        if snapshot is not None:
            self._record(broker, snapshot, entry["stats"]["reported_at"])

    def _record(self, broker: Any, snapshot: dict[str, Any], now_ms: int) -> None:
        """Add what was processed and failed since the last report to the minute's activity
        (a failed write is added by the next report instead)."""
        processed, failed = snapshot["processed"], snapshot["failed"]
        record_activity(
            broker.client,
            broker.namespace,
            now_ms=now_ms,
            processed=processed - self._reported[0],
            failed=failed - self._reported[1],
            queues=(self._entry or {}).get("queues", ()),
        )
        self._reported = (processed, failed)

    def _report(self, broker: Any) -> None:
        while not self._stop.wait(self.interval_ms / 1000):
            try:
                self._write(broker)
            except Exception as exc:  # Redis away: the next round tries again
                logger.warning("cannot write the worker's figures to Redis: %s", exc)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        if self._reporter is not None:
            self._reporter.join(timeout=self.interval_ms / 1000 + 5)
            self._reporter = None
        client = getattr(broker, "client", None)
        broker_id = getattr(broker, "broker_id", None)
        if client is None or broker_id is None:
            return
        if self.stats is not None:  # the messages finished since the last report
            try:
                self._record(broker, self.stats.snapshot(), int(time.time() * 1000))
            except Exception as exc:
                logger.warning("cannot write the worker's last figures to Redis: %s", exc)
        try:
            client.hdel(workers_key(broker.namespace), broker_id)
        except Exception:
            logger.exception("cannot unregister the worker from Redis")

"""``WorkerRegistry``: each Redis worker writes down which queues it consumes.

Dramatiq's Redis broker records a heartbeat per worker process (``heartbeats_key``: a sorted
set of broker ids scored by the last contact, in ms) but not what the worker consumes. At
boot this middleware adds ``{broker_id: {"host", "pid", "queues", "started_at",
"metrics"}}`` to the hash :func:`gcmc_jobs.redis_keys.workers_key` and removes it at
shutdown; ``gcmc-jobs health`` and ``serve``'s ``/metrics`` join the two. ``metrics`` is the
address of the process's Prometheus exporter (:meth:`Metrics.start_exporter`: Dramatiq
runs the ``after_*`` hooks last middleware first; None without ``GCMC_JOBS_METRICS_PORT``).
One Redis write per worker boot and shutdown, none per message. On other brokers it does
nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

from dramatiq import Middleware

from gcmc_jobs.middleware.metrics import Metrics
from gcmc_jobs.redis_keys import workers_key

__all__ = ["WorkerRegistry"]

logger = logging.getLogger(__name__)


class WorkerRegistry(Middleware):
    """Register a Redis worker's queues at boot; unregister at shutdown."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        client = getattr(broker, "client", None)
        broker_id = getattr(broker, "broker_id", None)
        if client is None or broker_id is None:
            return
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        entry = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": sorted(q for q in queues if not q.endswith(".DQ")),
            "started_at": int(time.time() * 1000),
            "metrics": next(
                (m.start_exporter() for m in broker.middleware if isinstance(m, Metrics)), None
            ),
        }
        try:
            client.hset(workers_key(broker.namespace), broker_id, json.dumps(entry))
        except Exception:
            logger.exception("cannot register the worker in Redis")

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        client = getattr(broker, "client", None)
        broker_id = getattr(broker, "broker_id", None)
        if client is None or broker_id is None:
            return
        try:
            client.hdel(workers_key(broker.namespace), broker_id)
        except Exception:
            logger.exception("cannot unregister the worker from Redis")

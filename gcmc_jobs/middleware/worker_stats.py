"""``WorkerStats``: one worker process's figures, kept in the process: messages processed and
failed, busy threads, and the processing times of the last messages in a small ring.

It makes no Redis call: :class:`~gcmc_jobs.middleware.worker_registry.WorkerRegistry` feeds it
from its per-message hooks (two clock reads, a thread-local, a lock-free ``deque.append``
and one short lock per message) and writes :meth:`WorkerStats.snapshot` with its registry
entry every ``GCMC_JOBS_WORKER_STATS_INTERVAL_MS``. :func:`rss_bytes` reads the process's
resident memory.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["RING_SIZE", "WorkerStats", "rss_bytes"]

#: How many of the last processing times the ring keeps.
RING_SIZE = 4_096


class WorkerStats:
    """Counters and a ring of processing times of the messages this process handled.

    ``window_ms``: the mean and p95 are taken over the messages finished within this long
    (5 min), at most the last :data:`RING_SIZE`. ``clock``: monotonic seconds
    (``time.perf_counter``), injected by tests.
    """

    def __init__(
        self,
        *,
        window_ms: int = 300_000,
        ring_size: int = RING_SIZE,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if window_ms <= 0:
            raise ValueError(f"window_ms must be > 0, not {window_ms}")
        self.window_ms = window_ms
        self.clock = clock
        self._ring: deque[tuple[float, float]] = deque(maxlen=ring_size)  # (end, seconds)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.processed = 0
        self.failed = 0
        self.busy = 0

    def started(self) -> None:
        """A message starts running on this thread."""
        if getattr(self._local, "start", None) is None:
            with self._lock:
                self.busy += 1
        self._local.start = self.clock()

    def finished(self, *, failed: bool) -> None:
        """The message this thread ran is done (``failed``: it raised)."""
        start = getattr(self._local, "start", None)
        if start is None:
            return
        self._local.start = None
        end = self.clock()
        self._ring.append((end, end - start))
        with self._lock:
            self.busy -= 1
            self.processed += 1
            if failed:
                self.failed += 1

    def skipped(self) -> None:
        """A middleware skipped the message this thread had started: not counted."""
        if getattr(self._local, "start", None) is not None:
            self._local.start = None
            with self._lock:
                self.busy -= 1

    def snapshot(self) -> dict[str, Any]:
        """``processed`` and ``failed`` since the process started, ``busy`` threads now,
        ``mean_ms``/``p95_ms`` over the window (None without messages in it), ``samples``
        (messages in the window), ``window_ms``."""
        since = self.clock() - self.window_ms / 1000
        durations = sorted(seconds for end, seconds in list(self._ring) if end >= since)
        with self._lock:
            counts = {"processed": self.processed, "failed": self.failed, "busy": self.busy}
        mean = p95 = None
        if durations:
            mean = round(sum(durations) / len(durations) * 1000, 3)
            p95 = round(durations[max(0, -(-len(durations) * 95 // 100) - 1)] * 1000, 3)
        return {
            **counts,
            "mean_ms": mean,
            "p95_ms": p95,
            "samples": len(durations),
            "window_ms": self.window_ms,
        }


def rss_bytes() -> int:
    """This process's resident memory, bytes: ``/proc/self/statm`` on Linux, else the peak
    (``getrusage``)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) * (1 if os.uname().sysname == "Darwin" else 1024)

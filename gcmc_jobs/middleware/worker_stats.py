"""``WorkerStats``: one worker process's figures, kept in the process: messages processed and
failed, busy threads, and the processing times of the last messages in a small ring.

It makes no Redis call: :class:`~gcmc_jobs.middleware.worker_registry.WorkerRegistry` feeds it
from its per-message hooks (two clock reads, a thread-local, a lock-free ``deque.append``
and no lock: each thread counts in a state of its own, summed by :meth:`WorkerStats.snapshot`)
and writes the snapshot with its registry entry every ``GCMC_JOBS_WORKER_STATS_INTERVAL_MS``.
:func:`rss_bytes` reads the process's resident memory.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from operator import attrgetter
from typing import Any

__all__ = ["RING_SIZE", "WorkerStats", "rss_bytes"]

#: How many of the last processing times the ring keeps.
RING_SIZE = 4_096


class _Thread:
    """One thread's share of a :class:`WorkerStats`: ``state`` is ``(start, processed,
    failed)``, ``start`` the clock when the message it runs started (None: idle). Only the
    owner thread writes it, one tuple per store, so a reader never sees half an update."""

    __slots__ = ("owner", "state")

    def __init__(self) -> None:
        self.owner = weakref.ref(threading.current_thread())
        self.state: tuple[float | None, int, int] = (None, 0, 0)

    def ended(self) -> bool:
        """The owner thread is gone: ``state`` can no longer change."""
        owner = self.owner()
        return owner is None or not owner.is_alive()


_state = attrgetter("state")


class WorkerStats:
    """Counters and a ring of processing times of the messages this process handled.

    ``window_ms``: the mean and p95 are taken over the messages finished within this long
    (5 min), at most the last :data:`RING_SIZE`. ``clock``: monotonic seconds
    (``time.perf_counter``), injected by tests.

    Each thread counts in a state of its own (no lock per message); :meth:`snapshot` sums
    them, and folds the counts of threads that ended into the process's totals.
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
        self._lock = threading.Lock()  # threads registered and folded one at a time
        self._threads: list[_Thread] = []
        # (busy, processed, failed) of the threads that ended.
        self._ended = (0, 0, 0)

    def _mine(self) -> _Thread:
        """This thread's state, made and registered on its first message."""
        mine = self._local.mine = _Thread()
        with self._lock:
            self._threads.append(mine)
        return mine

    # started, finished and skipped also take a hook's arguments (``broker, message`` and
    # ``result=`` or ``exception=``, ignored but for the exception), so that WorkerRegistry
    # hands them to the broker as its hooks: no call of a hook of its own in between.

    def started(self, *_hook: Any) -> None:
        """A message starts running on this thread."""
        try:
            mine: _Thread = self._local.mine
        except AttributeError:
            mine = self._mine()
        _, processed, failed = mine.state
        mine.state = (self.clock(), processed, failed)

    def finished(
        self,
        *_hook: Any,
        failed: bool = False,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """The message this thread ran is done (``failed``, or an ``exception``: it raised)."""
        try:
            mine: _Thread = self._local.mine
        except AttributeError:
            return
        start, processed, failures = mine.state
        if start is None:
            return
        end = self.clock()
        self._ring.append((end, end - start))
        failed = failed or exception is not None
        mine.state = (None, processed + 1, failures + 1 if failed else failures)

    def skipped(self, *_hook: Any) -> None:
        """A middleware skipped the message this thread had started: not counted."""
        mine: _Thread | None = getattr(self._local, "mine", None)
        if mine is not None and mine.state[0] is not None:
            mine.state = (None, *mine.state[1:])

    def _counts(self) -> dict[str, int]:
        """``busy``, ``processed`` and ``failed`` summed over the threads."""
        with self._lock:
            busy, processed, failed = self._ended
            # The states of ended threads are final: fold them into the totals first.
            alive = []
            for thread in self._threads:
                if thread.ended():
                    start, done, failures = thread.state
                    busy += start is not None  # as before: a thread that died mid-message
                    processed += done
                    failed += failures
                else:
                    alive.append(thread)
            self._threads = alive
            self._ended = (busy, processed, failed)
            # list(map(attrgetter)) runs in C without releasing the GIL: every live
            # thread's state as of one instant, as the former lock gave.
            for start, done, failures in list(map(_state, alive)):
                busy += start is not None
                processed += done
                failed += failures
        return {"processed": processed, "failed": failed, "busy": busy}

    @property
    def processed(self) -> int:
        """Messages processed since the process started."""
        return self._counts()["processed"]

    @property
    def failed(self) -> int:
        """Messages that raised since the process started."""
        return self._counts()["failed"]

    @property
    def busy(self) -> int:
        """Threads running a message now."""
        return self._counts()["busy"]

    def snapshot(self) -> dict[str, Any]:
        """``processed`` and ``failed`` since the process started, ``busy`` threads now,
        ``mean_ms``/``p95_ms`` over the window (None without messages in it), ``samples``
        (messages in the window), ``window_ms``."""
        since = self.clock() - self.window_ms / 1000
        durations = sorted(seconds for end, seconds in list(self._ring) if end >= since)
        counts = self._counts()
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

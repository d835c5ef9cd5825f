"""A background batcher: items put from many threads are written in one call per batch."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from gcmc_jobs.logging.library import get_logger

__all__ = ["Batcher"]

T = TypeVar("T")

logger = get_logger("gcmc_jobs.middleware")

_STOP = object()


class Batcher(Generic[T]):
    """Hands items to ``write(batch)`` from one daemon thread, at most ``max_items`` per call:
    after the first item of a batch it sleeps ``wait_ms``, then takes everything queued.

    The thread starts on the first :meth:`put` (so building the middleware starts nothing and
    each forked worker process gets its own); :meth:`close` writes what is left. A failed
    ``write`` is logged (``batch_write_failed``) and dropped: use it only for writes whose
    loss is safe.
    """

    def __init__(
        self, write: Callable[[Sequence[T]], None], *, wait_ms: int = 20, max_items: int = 500
    ) -> None:
        self.write = write
        self.wait_ms = wait_ms
        self.max_items = max_items
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: T) -> None:
        """Queue ``item`` for the next batch."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="gcmc-jobs-batcher", daemon=True
                    )
                    self._thread.start()
        self._queue.put(item)

    def close(self, timeout: float = 10) -> None:
        """Write every queued item and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self) -> None:
        # Sleep, then drain: one wake-up per batch, not one per item (16 worker threads
        # putting items must not each wake this thread).
        while True:
            first = self._queue.get()
            batch: list[T] = []
            stopping = first is _STOP
            if not stopping:
                batch.append(first)  # type: ignore[arg-type]
                time.sleep(self.wait_ms / 1000)
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            for start in range(0, len(batch), self.max_items):
                try:
                    self.write(batch[start : start + self.max_items])
                except Exception as exc:
                    logger.error("batch_write_failed", items=len(batch), error=repr(exc))
            if stopping:
                return

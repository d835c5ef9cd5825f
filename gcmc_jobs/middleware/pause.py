"""``Pause``: hold back the messages of paused queues, on every worker, until resumed.

A queue is paused by adding its name to the
:class:`~gcmc_jobs.middleware.stores.pauses.PauseStore`
(``gcmc-jobs pause QUEUE``, the admin API). Before a message runs, this middleware looks its
queue up in a cached copy of the paused set; a paused queue's message is sent again with a
short delay and skipped, so it waits in the broker (in the queue's delay queue) and runs
once the queue is resumed. Nothing is lost: the copy is enqueued *before* the original is
acknowledged, so a crash in between runs the message twice rather than never.

Why a middleware and not a consumer that stops fetching: it works the same on Redis,
RabbitMQ and the stub broker without subclassing their consumers, it also holds back the
messages a worker had already prefetched when the pause began, and the cache keeps it to at
most one store read per ``refresh_ms`` per process (no Redis round trip per message). The
price is that a paused backlog cycles through the delay queue every ``delay_ms``, and that
order within a paused queue is not kept.

Place it before deduplication and rate limits, so a paused message takes no dedup key and
no rate-limit slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.middleware import SkipMessage

from gcmc_jobs.middleware.stores.pauses import PauseStore

__all__ = ["Pause"]

logger = logging.getLogger(__name__)


class Pause(Middleware):
    """Hold back messages of paused queues.

    Parameters:
      store: where the paused queue names are kept.
      refresh_ms: how long the cached paused set is trusted, ms (default 1,000): a pause
        or resume reaches every worker within this time.
      delay_ms: how long a held-back message waits in the delay queue before it is looked
        at again, ms (default 5,000): after a resume, the backlog starts within this time.
      clock: monotonic clock in seconds (injected in tests).
    """

    def __init__(
        self,
        store: PauseStore,
        *,
        refresh_ms: int = 1_000,
        delay_ms: int = 5_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.refresh_ms = refresh_ms
        self.delay_ms = delay_ms
        self.clock = clock
        #: when the paused set was last read from the store (or tried), and that set
        self._fetched: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()

    def paused_queues(self) -> frozenset[str]:
        """The paused set, read from the store at most once per ``refresh_ms``.

        If the store cannot be read, the last known set is kept (and the error logged).
        """
        now = self.clock()
        # Without the lock while the set is fresh (every message asks).
        paused = self._fresh(now)
        if paused is not None:
            return paused
        with self._lock:
            paused = self._fresh(now)  # another thread may have read the store meanwhile
            if paused is not None:
                return paused
            fetched = self._fetched
            paused = frozenset() if fetched is None else fetched[1]
            try:
                paused = self.store.paused()
            except Exception:
                logger.exception("cannot read the paused queues; keeping the last known set")
            self._fetched = (now, paused)
            return paused

    def _fresh(self, now: float) -> frozenset[str] | None:
        """The cached set while it is fresh at ``now``, else None (one attribute read)."""
        fetched = self._fetched
        if fetched is not None and (now - fetched[0]) * 1000 < self.refresh_ms:
            return fetched[1]
        return None

    def before_process_message(self, broker: Broker, message: Any) -> None:
        # The cached set while fresh (every message asks), else paused_queues() reads it.
        paused = self._fresh(self.clock())
        if paused is None:
            paused = self.paused_queues()
        if message.queue_name not in paused:
            return
        broker.enqueue(message.copy(), delay=self.delay_ms)
        logger.info(
            "queue %s is paused: message %s held back for %d ms",
            message.queue_name,
            message.message_id,
            self.delay_ms,
        )
        raise SkipMessage(f"queue {message.queue_name} is paused")

"""``OutboxRelay``: moves the messages hosts committed to the outbox onto the broker.

Hosts write messages in their own transaction (:mod:`gcmc_jobs.outbox`); the relay takes
committed rows in batches (:class:`~gcmc_jobs.middleware.stores.outbox.OutboxStore`: locked
with ``FOR UPDATE SKIP LOCKED``, so relays in every worker process share the work), enqueues
them in bulk (the ``enqueue`` callable: :func:`gcmc_jobs.brokers.bulk.enqueue_many`), then
deletes them in the same transaction.

Exactly once, on the Redis broker: a relay can die after the broker has a batch and before
its rows are deleted, and the next relay finds the rows again. So every enqueued message's
relay key (:func:`gcmc_jobs.redis_keys.outbox_relayed_key`, kept ``marker_ttl`` ms) is
written in the same ``MULTI`` as the message itself (one Lua call for a chunk's keys); before
enqueueing, the relay reads the keys of its batch (one ``MGET``) and only deletes the rows
whose message the broker already has. Either the message and its key are in Redis, or
neither is. On other brokers (RabbitMQ, the stub) there is no such transaction: a relay
killed in that window sends the batch again (at least once; a ``dedup_key`` still makes it
run once).

In workers it runs on a daemon thread started at worker boot (when ``enabled``), woken by
the store (PostgreSQL ``NOTIFY`` at the host's commit) or every ``poll_ms``; ``gcmc-jobs
outbox relay`` runs the same loop in its own process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
import structlog
from dramatiq import Middleware

from gcmc_jobs.middleware.stores.outbox import OutboxRow, OutboxStore
from gcmc_jobs.redis_keys import outbox_relayed_key

__all__ = ["OutboxRelay"]

logger = structlog.get_logger("gcmc_jobs.middleware.outbox_relay")

#: Sets each key of KEYS to 1 with a TTL of ARGV[1] ms: a chunk's relay keys in one command.
_SET_MARKERS = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'PX', ARGV[1])
end
return #KEYS
"""

#: ``enqueue(broker, messages, *, delay=..., also=...)``: the bulk enqueue the relay uses.
Enqueue = Callable[..., Any]


class OutboxRelay(Middleware):
    """Relay committed outbox rows to the broker (see the module docstring).

    Parameters:
      store: the committed rows (:class:`~.stores.outbox.SqlOutboxStore` in gcmc-jobs).
      enqueue: the bulk enqueue, ``enqueue_many``-shaped (``also=`` adds writes to the
        transaction of each chunk).
      enabled: start the relay thread at worker boot (``GCMC_JOBS_OUTBOX_RELAY``).
      batch_size: rows per transaction (500).
      poll_ms: longest wait between two looks at the table when nothing wakes the relay
        (1,000 ms); after a failure (the broker or the database down) the relay waits this
        long before trying again.
      marker_ttl: how long a relayed message's key is kept, ms (24 h): a relay killed between
        the enqueue and the delete is caught up by any relay that runs within this time.
    """

    def __init__(
        self,
        store: OutboxStore,
        enqueue: Enqueue,
        *,
        enabled: bool = True,
        batch_size: int = 500,
        poll_ms: int = 1_000,
        marker_ttl: int = 86_400_000,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.store = store
        self.enqueue = enqueue
        self.enabled = enabled
        self.batch_size = batch_size
        self.poll_ms = poll_ms
        self.marker_ttl = marker_ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- One batch -------------------------------------------------------------------------

    def relay_once(self, broker: dramatiq.Broker) -> int:
        """Relay one batch; returns how many rows it took (and deleted)."""
        with self.store.batch(self.batch_size) as rows:
            if rows:
                self._send(broker, rows)
            return len(rows)

    def drain(self, broker: dramatiq.Broker) -> int:
        """Relay batches until one comes back short; returns how many rows were relayed."""
        total = 0
        while True:
            taken = self.relay_once(broker)
            total += taken
            if taken < self.batch_size:
                return total

    def _send(self, broker: dramatiq.Broker, rows: Sequence[OutboxRow]) -> None:
        messages = [dramatiq.Message.decode(row.body.encode()) for row in rows]
        client, namespace = _redis_of(broker)
        if client is not None:
            keys = [outbox_relayed_key(namespace, m.message_id) for m in messages]
            seen = client.mget(keys)
            pending = [
                (row, m) for row, m, s in zip(rows, messages, seen, strict=True) if s is None
            ]
            if len(pending) < len(rows):
                logger.warning("outbox_already_relayed", messages=len(rows) - len(pending))
        else:
            pending = list(zip(rows, messages, strict=True))
        now = int(time.time() * 1000)
        by_delay: dict[int | None, list[dramatiq.Message[Any]]] = {}
        for row, message in pending:
            delay = None
            if row.not_before_ms is not None and row.not_before_ms > now:
                delay = row.not_before_ms - now
            by_delay.setdefault(delay, []).append(message)
        also = self._markers(namespace) if client is not None else None
        for delay, group in by_delay.items():
            self.enqueue(broker, group, delay=delay, also=also)

    def _markers(self, namespace: str) -> Callable[[Any, Sequence[Any]], None]:
        """``also`` for the bulk enqueue: the chunk's relay keys, written by one Lua call
        (``SET key 1 PX marker_ttl`` each) queued in the chunk's ``MULTI``. ``EVAL``, not
        ``EVALSHA``: redis-py checks a pipeline's registered scripts with one more round
        trip (``SCRIPT EXISTS``) at each execute; Redis caches the script by its body."""
        ttl = self.marker_ttl

        def write(pipeline: Any, messages: Sequence[Any]) -> None:
            keys = [outbox_relayed_key(namespace, message.message_id) for message in messages]
            pipeline.eval(_SET_MARKERS, len(keys), *keys, ttl)

        return write

    # -- The loop --------------------------------------------------------------------------

    def run(self, broker: dramatiq.Broker, stop: threading.Event | None = None) -> None:
        """Relay until ``stop`` is set: drain, then wait for a commit or ``poll_ms``. A
        failure is logged (``outbox_relay_failed``) and retried after ``poll_ms``."""
        stop = stop if stop is not None else self._stop
        while not stop.is_set():
            try:
                relayed = self.drain(broker)
                if relayed:
                    logger.debug("outbox_relayed", messages=relayed)
            except Exception as exc:
                logger.warning("outbox_relay_failed", error=f"{type(exc).__name__}: {exc}")
                stop.wait(self.poll_ms / 1000)
                continue
            self.store.wait(self.poll_ms, stop)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(broker,), name="gcmc-jobs-outbox-relay", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self.store.wake()
            thread.join(timeout=max(self.poll_ms / 1000, 1) + 5)
            self.store.close()


def _redis_of(broker: dramatiq.Broker) -> tuple[Any, str]:
    """The Redis client and namespace of a Redis broker, or (None, "") for another broker."""
    client = getattr(broker, "client", None)
    namespace = getattr(broker, "namespace", None)
    if client is None or not isinstance(namespace, str) or not hasattr(client, "mget"):
        return None, ""
    return client, namespace

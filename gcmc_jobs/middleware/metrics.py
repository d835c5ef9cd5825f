"""Prometheus metrics of gcmc-jobs, on a registry of their own, and the :class:`Metrics`
middleware that counts message states and times attempts.

Expose :data:`REGISTRY` at ``/metrics`` (``prometheus_client.generate_latest(REGISTRY)``), or
let the worker serve it: ``Metrics(port=...)`` starts an HTTP exporter in
``after_worker_boot`` (never at import). Each worker process serves its own figures; with
several processes on one host the first takes ``port``, the next ``port + 1``, and so on.
The message counters are counted where messages are processed, so only the worker
exporters have them: ``gcmc-jobs serve``'s ``/metrics`` lists each live worker's exporter
(``gcmc_jobs_worker_info``, from :attr:`Metrics.address`, which ``WorkerRegistry``
registers) instead of summing them.

=========================================  ============================  ==================
metric                                     labels                        counts
=========================================  ============================  ==================
``gcmc_jobs_messages_total``               actor, queue, state           message states:
                                                                         ``enqueued``,
                                                                         ``started``,
                                                                         ``succeeded``,
                                                                         ``errored`` (an
                                                                         attempt raised),
                                                                         ``failed`` (for
                                                                         good), ``skipped``
``gcmc_jobs_message_duration_seconds``     actor                         attempt duration
``gcmc_jobs_dead_lettered_total``          actor                         dead letters stored
``gcmc_jobs_duplicates_skipped_total``     actor                         duplicates skipped
``gcmc_jobs_rate_limited_total``           actor, limit_class            deferrals
``gcmc_jobs_emails_total``                 kind, status                  :func:`email_sent`
``gcmc_jobs_sms_total``                    kind, status                  :func:`sms_sent`
``gcmc_jobs_mail_circuit_state``           (gauge)                       0 closed, 1 half
                                                                         open, 2 open
``gcmc_jobs_mail_circuit_held_total``      queue                         email held by the
                                                                         open breaker
``gcmc_jobs_mail_circuit_probes_total``    result                        probes (ok, failed)
``gcmc_jobs_mail_circuit_opened_total``                                  trips seen here
``gcmc_jobs_provider_rate_deferred_total`` queue                         provider-rate
                                                                         deferrals
=========================================  ============================  ==================

:class:`Metrics` counts each message's states and duration in a table of the thread that
ran it, without a lock, and adds the tables to the metrics when :data:`REGISTRY` is
collected (a scrape, ``REGISTRY.get_sample_value``): the exposition is the same, the
values read straight off a child (``MESSAGES.labels(...)._value``) lag until then.

The mail circuit and provider-rate metrics are defined by their middleware
(:mod:`~gcmc_jobs.middleware.mail_circuit`, :mod:`~gcmc_jobs.middleware.provider_rate`) on
this registry.
"""

from __future__ import annotations

import socket
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from gcmc_jobs.logging.library import get_logger

__all__ = [
    "REGISTRY",
    "Metrics",
    "dead_lettered",
    "duplicate_skipped",
    "email_sent",
    "rate_limited",
    "sms_sent",
]

logger = get_logger("gcmc_jobs.middleware.metrics")

# A module global: one lookup on the per-message path (not time.perf_counter's two).
_perf_counter = time.perf_counter

#: The registry holding every gcmc-jobs metric (not prometheus_client's global one).
REGISTRY = CollectorRegistry(auto_describe=True)


class _Tallies:
    """The per-message figures of :class:`Metrics`, counted per thread without a lock and
    added to their prometheus children when :data:`REGISTRY` is collected (a scrape,
    ``get_sample_value``). A message costs two dict increments and a bucket search instead
    of three locked prometheus updates (``Counter.inc`` twice, ``Histogram.observe``).

    Each thread's table holds running totals that only that thread writes; :meth:`fold`
    adds to each child what a table gained since the previous fold. A fold racing an
    increment sees it at the next fold, so a scrape lags a message in flight at most, as
    prometheus' own separate updates of a histogram's sum and bucket do.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()  # tables registered and folded one at a time
        self._tables: list[_Table] = []

    def table(self) -> _Table:
        """This thread's table (made and registered on first use)."""
        table: _Table | None = getattr(self._local, "table", None)
        if table is None:
            table = self._local.table = _Table()
            with self._lock:
                self._tables.append(table)
        return table

    def fold(self) -> None:
        """Add every table's figures since the previous fold to their children."""
        with self._lock:
            for table in self._tables:
                # dict.copy() and list.copy() run in C under the GIL: a consistent copy
                # while the owner thread keeps counting.
                for child, count in table.counts.copy().items():
                    delta = count - table.folded_counts.get(child, 0)
                    if delta:
                        child.inc(delta)
                        table.folded_counts[child] = count
                for child, totals in table.durations.copy().items():
                    now = totals.copy()
                    before = table.folded_durations.get(child)
                    if before is None:
                        before = [0.0] * len(now)
                    if now != before:
                        # Histogram has no public way to add n observations of a known sum.
                        child._sum.inc(now[0] - before[0])
                        for i, bucket in enumerate(child._buckets, start=1):
                            if now[i] != before[i]:
                                bucket.inc(now[i] - before[i])
                        table.folded_durations[child] = now


class _Table:
    """One thread's running totals: ``counts`` per counter child; ``durations`` per
    histogram child, ``[sum, count in bucket 0, count in bucket 1, …]``."""

    __slots__ = ("counts", "durations", "folded_counts", "folded_durations")

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}
        self.durations: dict[Any, list[float]] = {}
        self.folded_counts: dict[Any, int] = {}
        self.folded_durations: dict[Any, list[float]] = {}


_TALLIES = _Tallies()


class _Counted:
    """The children one actor's messages on one queue count into, each made when it is
    first counted (so a state never seen is not exposed, and ``_created`` is its first
    count's time)."""

    __slots__ = ("duration", "errored", "started", "succeeded")

    def __init__(self) -> None:
        self.started: Any = None
        self.succeeded: Any = None
        self.errored: Any = None
        self.duration: Any = None


class _Thread:
    """A worker thread's share of :class:`Metrics`: its table's dicts, and the message its
    attempt runs (``message``, its children ``counted``, started at ``at``), so that the
    after hook finds them without a lookup."""

    __slots__ = ("at", "counted", "counts", "durations", "message")

    def __init__(self) -> None:
        table = _TALLIES.table()
        self.counts = table.counts
        self.durations = table.durations
        self.at: float | None = None
        self.message: Any = None
        self.counted: _Counted | None = None


def _tally_duration(durations: dict[Any, list[float]], child: Any, seconds: float) -> None:
    """Add one observation of ``seconds`` to ``child``'s totals in a thread's ``durations``
    (sum, then a count per bucket of ``_UPPER``)."""
    totals = durations.get(child)
    if totals is None:
        totals = durations[child] = [0.0] * (len(_UPPER) + 1)
    totals[0] += seconds
    totals[bisect_left(_UPPER, seconds) + 1] += 1


class _FoldedCounter(Counter):
    """A ``Counter`` that adds the per-thread tallies to its children before it is
    collected (the exposition is the Counter's own)."""

    def collect(self) -> Any:
        _TALLIES.fold()
        return super().collect()


class _FoldedHistogram(Histogram):
    """A ``Histogram`` that adds the per-thread tallies to its children before it is
    collected (the exposition is the Histogram's own)."""

    def collect(self) -> Any:
        _TALLIES.fold()
        return super().collect()


MESSAGES = _FoldedCounter(
    "gcmc_jobs_messages",
    "Messages by actor, queue and state.",
    ["actor", "queue", "state"],
    registry=REGISTRY,
)
#: The duration histogram's upper bounds, seconds (``+Inf`` added by prometheus_client).
_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)
DURATION = _FoldedHistogram(
    "gcmc_jobs_message_duration_seconds",
    "How long one attempt ran, seconds.",
    ["actor"],
    buckets=_BOUNDS,
    registry=REGISTRY,
)
#: Where an observation goes: the first bucket whose bound is >= it (as ``observe``).
_UPPER = (*_BOUNDS, float("inf"))
DEAD_LETTERED = Counter(
    "gcmc_jobs_dead_lettered",
    "Messages written to the dead letters.",
    ["actor"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "gcmc_jobs_duplicates_skipped", "Duplicate messages skipped.", ["actor"], registry=REGISTRY
)
RATE_LIMITED = Counter(
    "gcmc_jobs_rate_limited",
    "Messages deferred by a rate limit.",
    ["actor", "limit_class"],
    registry=REGISTRY,
)
EMAILS = Counter(
    "gcmc_jobs_emails", "Emails by kind and status.", ["kind", "status"], registry=REGISTRY
)


def email_sent(kind: str, status: str) -> None:
    """Count one email of ``kind`` (e.g. ``password_reset``) that ended ``status``
    (e.g. ``sent``, ``suppressed``, ``failed``)."""
    EMAILS.labels(kind=kind, status=status).inc()


SMS = Counter("gcmc_jobs_sms", "SMS by kind and status.", ["kind", "status"], registry=REGISTRY)


def sms_sent(kind: str, status: str) -> None:
    """Count one SMS of ``kind`` that ended ``status`` (``sent``, ``suppressed``,
    ``already_done``, ``failed``, ``retried``)."""
    SMS.labels(kind=kind, status=status).inc()


def dead_lettered(actor: str) -> None:
    """Count one message of ``actor`` written to the dead letters."""
    DEAD_LETTERED.labels(actor=actor).inc()


def duplicate_skipped(actor: str) -> None:
    """Count one duplicate message of ``actor`` skipped (at enqueue or before running)."""
    DUPLICATES.labels(actor=actor).inc()


def rate_limited(actor: str, limit_class: str) -> None:
    """Count one message of ``actor`` deferred by the ``limit_class`` rate limit."""
    RATE_LIMITED.labels(actor=actor, limit_class=limit_class).inc()


class Metrics(Middleware):
    """Count message states and time attempts on :data:`REGISTRY`.

    Parameters:
      port: serve :data:`REGISTRY` over HTTP from each worker process on this port (or the
        next free one above it, up to ``port + 63``); ``None`` (default): no exporter.
      host: the exporter's address (``"0.0.0.0"``).
    """

    def __init__(self, *, port: int | None = None, host: str = "0.0.0.0") -> None:  # noqa: S104
        self.port = port
        self.host = host
        self.server_port: int | None = None
        self._local = threading.local()
        self._children: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        self._counted: dict[tuple[str, str], _Counted] = {}

    @property
    def address(self) -> str | None:
        """The URL this process's exporter serves (None: no exporter): the host name when
        it listens on every interface."""
        if self.server_port is None:
            return None
        host = socket.gethostname() if self.host in ("", "0.0.0.0", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server_port}/metrics"

    def _count(self, message: Any, state: str) -> None:
        # Children are cached (``labels()`` takes a lock and builds a key on every call)
        # and made at the first message, so their ``_created`` is when it was counted;
        # the count itself goes to this thread's tally, folded in at collection.
        child = self._child(message, state)
        counts = _TALLIES.table().counts
        counts[child] = counts.get(child, 0) + 1

    def _duration(self, actor: str) -> Any:
        """``DURATION``'s child of ``actor`` (cached)."""
        child = self._durations.get(actor)
        if child is None:
            child = self._durations[actor] = DURATION.labels(actor=actor)
        return child

    def _observe(self, actor: str, seconds: float) -> None:
        """``DURATION.labels(actor=actor).observe(seconds)``, into this thread's tally."""
        _tally_duration(_TALLIES.table().durations, self._duration(actor), seconds)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.start_exporter()

    def start_exporter(self) -> str | None:
        """Start this process's exporter if ``port`` is set and it is not running yet;
        returns :attr:`address`. Idempotent: ``WorkerRegistry`` calls it too, since Dramatiq
        runs the ``after_*`` hooks in reverse order and it needs the address first."""
        if self.port is None or self.server_port is not None:
            return self.address
        for port in range(self.port, self.port + 64):
            try:
                start_http_server(port, addr=self.host, registry=REGISTRY)
            except OSError:
                continue
            self.server_port = port
            logger.info("metrics_exporter_started", port=port)
            return self.address
        logger.error("metrics_exporter_failed", port=self.port)
        return None

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        self._count(message, "enqueued")

    def after_enqueue_many(
        self, broker: dramatiq.Broker, messages: Sequence[Any], delay: int | None
    ) -> None:
        """A bulk enqueue's written chunk: one increment per actor and queue."""
        counts: dict[tuple[str, str], int] = {}
        for message in messages:
            key = (message.actor_name, message.queue_name)
            counts[key] = counts.get(key, 0) + 1
        for (actor, queue), count in counts.items():
            child = self._children.get((actor, queue, "enqueued"))
            if child is None:
                child = self._children[(actor, queue, "enqueued")] = MESSAGES.labels(
                    actor=actor, queue=q_name(queue), state="enqueued"
                )
            child.inc(count)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # _count(message, "started"), with this thread's table and the message's children
        # found once each: one threading.local read, no key built but the lookup's.
        try:
            thread: _Thread = self._local.thread
        except AttributeError:
            thread = self._local.thread = _Thread()
        thread.at = _perf_counter()
        counted = self._counted.get((message.actor_name, message.queue_name))
        if counted is None:
            counted = self._counted_of(message)
        thread.message = message
        thread.counted = counted
        child = counted.started
        if child is None:
            child = counted.started = self._child(message, "started")
        counts = thread.counts
        counts[child] = counts.get(child, 0) + 1

    def _counted_of(self, message: Any) -> _Counted:
        counted = _Counted()
        if len(self._counted) < 10_000:  # actors x queues: few; never grow without bound
            self._counted[(message.actor_name, message.queue_name)] = counted
        return counted

    def _child(self, message: Any, state: str) -> Any:
        """``MESSAGES``' child of the message's actor and queue in ``state`` (cached)."""
        key = (message.actor_name, message.queue_name, state)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = MESSAGES.labels(
                actor=message.actor_name, queue=q_name(message.queue_name), state=state
            )
        return child

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        try:
            thread: _Thread = self._local.thread
        except AttributeError:
            thread = self._local.thread = _Thread()
        if thread.message is message:  # its before hook ran on this thread: the children
            counted = thread.counted
            thread.message = thread.counted = None
        else:
            counted = self._counted.get((message.actor_name, message.queue_name))
        if counted is None:
            counted = self._counted_of(message)
        started = thread.at
        if started is not None:  # _observe(actor, seconds)
            seconds = _perf_counter() - started
            thread.at = None
            child = counted.duration
            if child is None:
                child = counted.duration = self._duration(message.actor_name)
            _tally_duration(thread.durations, child, seconds)
        if exception is None:
            child = counted.succeeded
            if child is None:
                child = counted.succeeded = self._child(message, "succeeded")
        else:
            child = counted.errored
            if child is None:
                child = counted.errored = self._child(message, "errored")
        counts = thread.counts
        counts[child] = counts.get(child, 0) + 1

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._count(message, "skipped")

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._count(message, "failed")

"""The package's brokers: building one from settings with its middleware stack, and how
actors are bound to it.

=================  =========================================================================
module             what it holds
=================  =========================================================================
(this package)     :func:`build_broker`, :func:`build_middleware` (the stack, in the order
                   below), the :data:`unconfigured` broker actors are declared on, :func:`bind`
``redis_broker``   :class:`~gcmc_jobs.brokers.redis_broker.RedisBroker`: Dramatiq's, with a
                   consumer that dead-letters undecodable messages and filtered hooks
``hooks``          which middleware implement which hook (shared by the broker and bulk),
                   and :class:`~gcmc_jobs.brokers.hooks.SelectingEmitter`: the brokers'
                   emits, which call a per-message hook only for the shapes of message it
                   can act on (``wants_<hook>``, :mod:`gcmc_jobs.middleware.selection`)
``bulk``           :func:`~gcmc_jobs.brokers.bulk.enqueue_many`: many messages per round trip
``defaults``       Dramatiq's ``AgeLimit``, ``TimeLimit``, ``ShutdownNotifications``,
                   ``Callbacks`` and ``CurrentMessage``, with cheaper per-message hooks, and
                   ``Retries`` and periodiq's ``PeriodiqMiddleware`` with the predicates of
                   theirs (the stack's; same behaviour)
``work_queue``     :class:`~gcmc_jobs.brokers.work_queue.WorkQueue`: the hand-off between a
                   worker's consumer and worker threads, which both brokers' first
                   middleware (``WorkQueues``) installs
=================  =========================================================================

The Lua script runner both the Redis broker and the rate-limit store use is
:mod:`gcmc_jobs.redis_scripts` (below the middleware, which needs it too); every Redis key
name is in :mod:`gcmc_jobs.redis_keys`.

Dramatiq binds an actor to a broker when the actor is declared, and ``get_broker()`` silently
makes a RabbitMQ broker when none is set. gcmc-jobs does neither behind a host application's
back: its actors are declared on :data:`unconfigured`, a broker that holds the whole
middleware stack (so actor options are checked at import) but refuses to enqueue, and
:func:`gcmc_jobs.configure` rebinds them (:func:`bind`) to the real broker built from
settings. Importing
``gcmc_jobs`` or its actors opens no connection and never touches Dramatiq's global broker.

The middleware order (first runs first on ``before_*`` hooks, last on ``after_*`` hooks):

=====  ========================  ==================================================================
 pos    middleware                why there
=====  ========================  ==================================================================
  1     AgeLimit                  drop messages past their ``max_age`` before doing any work
  2     TimeLimit                 interrupt an attempt that runs past its ``time_limit``
  3     ShutdownNotifications     let actors notice a worker shutting down
  4     Callbacks                 ``on_success`` / ``on_failure`` actors
  5     Pipelines                 ``pipe_ignore`` / pipeline continuation
  6     PeriodiqMiddleware        the ``periodic`` option; the scheduler tick is periodic
  7     Retries                   exponential backoff with jitter; ``throws`` = never retry
  8     Pause                     hold back paused queues' messages, before any dedup key or
                                  rate-limit slot is taken (``gcmc-jobs pause``)
  9     MailCircuit               holds email while the mail server is down (circuit breaker):
                                  like Pause, before any dedup key, provider token or
                                  rate-limit slot is taken; its ``after_process_message``
                                  runs before Retries' and counts delivery failures
  10    Deduplication             after Pause (a held-back message keeps its key) and before
                                  RateLimits (a duplicate never takes a rate-limit slot); after
                                  Retries, so its ``after_*`` hooks run before Retries decides
                                  and a retry's re-enqueue passes its claim (same message id)
  11    ProviderRate              the provider-wide send rate (a token bucket in Redis): after
                                  Deduplication (a duplicate takes no token), before
                                  RateLimits; a deferral is a copy with the same id
  12    RateLimits                books a slot just before the message would run; a deferral
                                  is a copy with the same id, so Deduplication lets it through
  13    StatusTracking            records each state change (``gcmc_jobs.status``): after Pause,
                                  Deduplication and RateLimits, so a message they skip is never
                                  ``running``; after Retries, so it sees an error before Retries
                                  re-sends it (``retrying``) or gives up; before DeadLetters, so
                                  its ``after_nack`` runs after theirs and knows whether the
                                  store took the message (``dead_lettered``, else ``failed``)
  14    DeadLetters               ``after_nack`` sees every failure for good, including the
                                  ones RateLimits fails (max deferral); runs before
                                  Deduplication's ``after_nack`` releases the key; after
                                  Retries, so its ``after_process_message`` reads a failed
                                  attempt's ``retries`` before Retries counts it (before
                                  Retries, a before hook on every message would)
  15    StructuredLogging         after the middleware that may skip a message, so ``started``
                                  is logged only for messages that really run; after Retries,
                                  so its ``after_process_message`` sees the error before
                                  Retries re-sends the message (logged as ``retried``)
  16    Metrics                   last on ``before``/first on ``after``: the duration measured
                                  is the actor's own
  17    WorkerRegistry            a Redis worker records the queues it consumes (for health),
                                  and its figures; last on ``before``/first on ``after`` of
                                  those that time a message, so it times the actor's own work
  18    CurrentMessage            the message being processed, for actors that read its options
                                  (the email actor reads its ``secrets`` option there)
  19    OutboxRelay               processes no message: starts the outbox relay thread at worker
                                  boot; last, so its enqueues pass every enqueue hook above
=====  ========================  ==================================================================

The Redis and RabbitMQ brokers put one more ahead of these, themselves (so also with a list
of your own): :class:`~gcmc_jobs.brokers.work_queue.WorkQueues`, which gives a worker booting
on them its work queue (``before_worker_boot``, first) and each consumer thread its delay
queue (``after_consumer_thread_boot``, last, still before the thread consumes). The stub
broker has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Pipelines as _DramatiqPipelines

from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.brokers.defaults import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    PeriodiqMiddleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from gcmc_jobs.errors import NotConfiguredError
from gcmc_jobs.middleware.dead_letters import DeadLetters
from gcmc_jobs.middleware.deduplication import Deduplication
from gcmc_jobs.middleware.mail_circuit import MailCircuit
from gcmc_jobs.middleware.metrics import Metrics
from gcmc_jobs.middleware.outbox_relay import OutboxRelay
from gcmc_jobs.middleware.pause import Pause
from gcmc_jobs.middleware.provider_rate import ProviderRate
from gcmc_jobs.middleware.rate_limits import RateLimits
from gcmc_jobs.middleware.selection import MessageShape
from gcmc_jobs.middleware.status_tracking import StatusTracking
from gcmc_jobs.middleware.stores.bundle import Stores
from gcmc_jobs.middleware.structured_logging import StructuredLogging
from gcmc_jobs.middleware.worker_registry import WorkerRegistry
from gcmc_jobs.middleware.worker_stats import WorkerStats
from gcmc_jobs.settings import Settings

__all__ = [
    "UnconfiguredBroker",
    "actor",
    "bind",
    "build_broker",
    "build_middleware",
    "unconfigured",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The option a pipeline step carries its next step in (Dramatiq's ``Pipelines``).
PIPE_TARGET = "pipe_target"


class Pipelines(_DramatiqPipelines):
    """Dramatiq's ``Pipelines``, returning at once for a message that is not part of a
    pipeline (no ``pipe_target`` option: almost every message). Dramatiq's hook imports
    ``dramatiq.message`` and looks the actor up before it reads that option: ~3 of its
    ~4.4 µs a message (``benchmarks/middleware_hooks.py``, issue 17). On gcmc-jobs' brokers
    the hook is left out altogether for such messages (:meth:`wants_after_process_message`)."""

    def wants_after_process_message(self, broker: Broker, shape: MessageShape) -> bool:
        """True only after a success of a message with a ``pipe_target`` option."""
        return not shape.failed and PIPE_TARGET in shape.option_keys

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if PIPE_TARGET in message.options:
            super().after_process_message(broker, message, result=result, exception=exception)  # type: ignore[no-untyped-call]


def build_middleware(settings: Settings, stores: Stores) -> list[Middleware]:
    """The middleware stack, in the order documented in this module's docstring, each
    middleware given its store from ``stores`` (the runtime's: it closes them)."""
    return [
        AgeLimit(),
        TimeLimit(time_limit=settings.time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # Our tick sends ordinary messages and tolerates delay, so periodiq's 30 s skip
        # (which also defeats retries) is widened to the tick period.
        PeriodiqMiddleware(skip_delay=settings.scheduler_tick_minutes * 60),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        Pause(
            stores.pauses, refresh_ms=settings.pause_refresh_ms, delay_ms=settings.pause_delay_ms
        ),
        MailCircuit(
            stores.mail_circuit,
            enabled=settings.mail_breaker,
            threshold=settings.mail_breaker_failures,
            probe_min_ms=settings.mail_breaker_probe_min_ms,
            probe_max_ms=settings.mail_breaker_probe_max_ms,
            hold_ms=settings.mail_breaker_hold_ms,
            critical_hold_ms=settings.mail_breaker_critical_hold_ms,
            half_open_ms=settings.mail_breaker_half_open_ms,
            refresh_ms=settings.mail_breaker_refresh_ms,
        ),
        Deduplication(stores.dedup, ttl=settings.dedup_ttl_ms),
        ProviderRate(
            stores.provider_rate,
            rate=settings.provider_rate,
            burst=settings.provider_burst,
            critical_reserve_percent=settings.provider_critical_reserve_percent,
        ),
        RateLimits(
            stores.rate_limits,
            limit=settings.rate_limit,
            window=settings.rate_limit_window_ms,
            limits={"security": settings.security_rate_limit},
            max_deferral=settings.rate_limit_max_deferral_ms,
        ),
        # On the in-process stub broker (tests, the demo) each change is written at once, so
        # a test reads the final state right after its join.
        StatusTracking(
            stores.status,
            ttl_ms=settings.status_ttl_ms,
            batch_ms=0 if settings.broker_kind == "stub" else 20,
        ),
        DeadLetters(stores.dead_letters),
        StructuredLogging(),
        Metrics(port=settings.metrics_port),
        WorkerRegistry(
            _worker_stats(settings), interval_ms=settings.worker_stats_interval_ms or 5_000
        ),
        CurrentMessage(),
        OutboxRelay(
            stores.outbox,
            enqueue_many,
            enabled=settings.outbox_relay,
            batch_size=settings.outbox_batch_size,
            poll_ms=settings.outbox_poll_ms,
            marker_ttl=settings.dedup_ttl_ms,
        ),
    ]


def _worker_stats(settings: Settings) -> WorkerStats | None:
    """The figures a Redis worker reports with its registry entry; None elsewhere (no
    registry to report to) or with ``worker_stats_interval_ms`` 0."""
    if settings.broker_kind != "redis" or not settings.worker_stats_interval_ms:
        return None
    return WorkerStats(window_ms=settings.worker_stats_window_ms)


def build_broker(settings: Settings, stores: Stores) -> Broker:
    """Build the broker ``settings.broker_kind`` names, with the whole middleware stack on
    ``stores``.

    Connects to nothing: Redis and RabbitMQ connections open on first use.
    """
    url = settings.broker_url.get_secret_value()
    middleware = build_middleware(settings, stores)
    kind = settings.broker_kind
    if kind == "redis":
        # Deferred on purpose: the Redis and RabbitMQ broker modules load their client
        # libraries, which `import gcmc_jobs` must not (tests/test_imports.py).
        from gcmc_jobs.brokers.redis_broker import RedisBroker
        from gcmc_jobs.redis_urls import redis_from_url

        return RedisBroker(
            # A plain URL or a Sentinel one (the client follows a failover).
            client=redis_from_url(url),
            middleware=middleware,
            namespace=settings.namespace,
            heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
            ack_batch_ms=settings.broker_ack_batch_ms,
        )
    if kind == "amqp":
        from gcmc_jobs.brokers.rabbitmq_broker import RabbitmqBroker  # deferred: see above

        return RabbitmqBroker(url=url, middleware=middleware)
    return StubBroker(middleware=middleware)


class UnconfiguredBroker(StubBroker):
    """Holds the package's actors until :func:`gcmc_jobs.configure`; refuses to enqueue."""

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> Any:
        raise NotConfiguredError(
            f"cannot send {message.actor_name!r}: gcmc_jobs is not configured. Call "
            "gcmc_jobs.configure() at start-up (it reads GCMC_JOBS_* settings), or use the "
            "gcmc_broker fixture of gcmc_jobs.testing in tests."
        )


#: The broker every package actor is declared on until ``configure()`` rebinds them. Its
#: stack holds in-process stub stores: it validates actor options and never runs a message.
unconfigured = UnconfiguredBroker(
    middleware=build_middleware(Settings.model_construct(), Stores.stubs())
)


#: The broker :func:`bind` last bound the actors to (None: :data:`unconfigured`).
_bound: Broker | None = None


@overload
def actor(fn: F) -> dramatiq.Actor[Any, Any]: ...
@overload
def actor(fn: None = None, **options: Any) -> Callable[[F], dramatiq.Actor[Any, Any]]: ...
def actor(fn: F | None = None, **options: Any) -> Any:
    """Declare an actor on the package's broker: ``@gcmc_jobs.actor(queue_name=...,
    max_retries=..., ...)``, or bare ``@gcmc_jobs.actor``; options as ``dramatiq.actor``'s,
    plus those of the package's middleware (``dedup_key``, ``rate_limit_key``, ...).

    The actor is declared on :data:`unconfigured` (its options checked against the whole
    stack), rebound by every :func:`gcmc_jobs.configure` like the package's own, and bound
    at once to the broker configured when it is declared after ``configure()`` (a host
    module the worker imports after ``gcmc_jobs.worker``).
    """

    def declare(function: F) -> dramatiq.Actor[Any, Any]:
        declared: dramatiq.Actor[Any, Any] = dramatiq.actor(broker=unconfigured, **options)(
            function
        )
        if _bound is not None:
            declared.broker = _bound
            _bound.declare_actor(declared)
        return declared

    return declare(fn) if fn is not None else declare


def bind(broker: Broker) -> None:
    """Rebind every actor declared with :func:`actor` to ``broker`` (what ``configure()``
    does; the package's actors must be declared, i.e. :mod:`gcmc_jobs.actors` imported)."""
    global _bound
    for declared in list(unconfigured.actors.values()):
        declared.broker = broker
        broker.declare_actor(declared)
    _bound = None if broker is unconfigured else broker

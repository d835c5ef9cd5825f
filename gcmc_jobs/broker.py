"""The package's broker: its middleware stack, and how actors are bound to a real broker.

Dramatiq binds an actor to a broker when the actor is declared, and ``get_broker()`` silently
makes a RabbitMQ broker when none is set. gcmc-jobs does neither behind a host application's
back: its actors are declared on :data:`unconfigured`, a broker that holds the whole
middleware stack (so actor options are checked at import) but refuses to enqueue, and
:func:`gcmc_jobs.configure` rebinds them to the real broker built from settings. Importing
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
  9     Deduplication             after Pause (a held-back message keeps its key) and before
                                  RateLimits (a duplicate never takes a rate-limit slot); after
                                  Retries, so its ``after_*`` hooks run before Retries decides
                                  and a retry's re-enqueue passes its claim (same message id)
  10    RateLimits                books a slot just before the message would run; a deferral
                                  is a copy with the same id, so Deduplication lets it through
  11    DeadLetters               ``after_nack`` sees every failure for good, including the
                                  ones RateLimits fails (max deferral); runs before
                                  Deduplication's ``after_nack`` releases the key
  12    StructuredLogging         after the middleware that may skip a message, so ``started``
                                  is logged only for messages that really run; after Retries,
                                  so its ``after_process_message`` sees the error before
                                  Retries re-sends the message (logged as ``retried``)
  13    Metrics                   last on ``before``/first on ``after``: the duration measured
                                  is the actor's own
  14    WorkerRegistry            a Redis worker records the queues it consumes (for health)
  15    CurrentMessage            the message being processed, for actors that read its options
                                  (the email actor reads its ``secrets`` option there)
=====  ========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from periodiq import PeriodiqMiddleware
from sqlalchemy import Engine

from gcmc_jobs.errors import ConfigurationError, NotConfiguredError
from gcmc_jobs.middleware.dead_letters import DeadLetters
from gcmc_jobs.middleware.deduplication import Deduplication
from gcmc_jobs.middleware.metrics import Metrics
from gcmc_jobs.middleware.pause import Pause
from gcmc_jobs.middleware.rate_limits import RateLimits
from gcmc_jobs.middleware.stores.dedup import DedupStore
from gcmc_jobs.middleware.stores.rate_limits import RateLimitStore
from gcmc_jobs.middleware.structured_logging import StructuredLogging
from gcmc_jobs.middleware.worker_registry import WorkerRegistry
from gcmc_jobs.ops.pauses import pause_store_for
from gcmc_jobs.settings import Settings

__all__ = ["UnconfiguredBroker", "actor", "build_broker", "build_middleware", "unconfigured"]

F = TypeVar("F", bound=Callable[..., Any])


def build_middleware(settings: Settings) -> list[Middleware]:
    """The middleware stack, in the order documented in this module's docstring."""
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
            pause_store_for(settings),
            refresh_ms=settings.pause_refresh_ms,
            delay_ms=settings.pause_delay_ms,
        ),
        *_observing_middleware(settings),
        WorkerRegistry(),
        CurrentMessage(),
    ]


def _observing_middleware(settings: Settings) -> list[Middleware]:
    """Positions 9-13: deduplication, rate limits, dead letters, logging, metrics.

    Their Redis stores use ``settings.store_redis_url``; without one they are in-process
    stubs, which only work within one process (tests, the embedded demo).
    """
    from gcmc_jobs.middleware.stores import (
        RedisDedupStore,
        RedisRateLimitStore,
        SqlDeadLetterStore,
        StubDedupStore,
        StubRateLimitStore,
    )

    dedup_store: DedupStore
    rate_store: RateLimitStore
    redis_url = settings.store_redis_url
    if redis_url is not None:
        import redis

        client = redis.Redis.from_url(redis_url)
        dedup_store = RedisDedupStore(client, namespace=settings.namespace)
        rate_store = RedisRateLimitStore(client, namespace=settings.namespace)
    else:
        dedup_store, rate_store = StubDedupStore(), StubRateLimitStore()

    def engine() -> Engine:
        from gcmc_jobs.runtime import current

        return current().engine

    return [
        Deduplication(dedup_store, ttl=settings.dedup_ttl_ms),
        RateLimits(
            rate_store,
            limit=settings.rate_limit,
            window=settings.rate_limit_window_ms,
            limits={"security": settings.security_rate_limit},
            max_deferral=settings.rate_limit_max_deferral_ms,
        ),
        DeadLetters(SqlDeadLetterStore(engine)),
        StructuredLogging(),
        Metrics(port=settings.metrics_port),
    ]


def build_broker(settings: Settings) -> Broker:
    """Build the broker named by ``settings.broker_url``, with the whole middleware stack.

    Connects to nothing: Redis and RabbitMQ connections open on first use.
    """
    url = settings.broker_url.get_secret_value()
    middleware = build_middleware(settings)
    broker: Broker
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Dramatiq's Redis broker, whose consumers dead-letter a message they cannot decode
        # instead of stranding it with everything prefetched alongside (see the module).
        from gcmc_jobs.redis_broker import RedisBroker

        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=url,
            middleware=middleware,
            namespace=settings.namespace,
            heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
        )
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, middleware=middleware)
    elif url.startswith("stub://"):
        broker = StubBroker(middleware=middleware)
    else:
        raise ConfigurationError(
            f"GCMC_JOBS_BROKER_URL must start with redis://, amqp:// or stub://, got {url[:12]!r}…"
        )
    return broker


class UnconfiguredBroker(StubBroker):
    """Holds the package's actors until :func:`gcmc_jobs.configure`; refuses to enqueue."""

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> Any:
        raise NotConfiguredError(
            f"cannot send {message.actor_name!r}: gcmc_jobs is not configured. Call "
            "gcmc_jobs.configure() at start-up (it reads GCMC_JOBS_* settings), or use the "
            "gcmc_broker fixture of gcmc_jobs.testing in tests."
        )


#: The broker every package actor is declared on until ``configure()`` rebinds them.
unconfigured = UnconfiguredBroker(middleware=build_middleware(Settings.model_construct()))


@overload
def actor(fn: F) -> dramatiq.Actor[Any, Any]: ...
@overload
def actor(fn: None = None, **options: Any) -> Callable[[F], dramatiq.Actor[Any, Any]]: ...
def actor(fn: F | None = None, **options: Any) -> Any:
    """Declare a package actor on :data:`unconfigured` (``dramatiq.actor`` otherwise)."""
    decorator = dramatiq.actor(broker=unconfigured, **options)
    return decorator(fn) if fn is not None else decorator


def bind(broker: Broker) -> None:
    """Rebind every package actor to ``broker`` (what ``configure()`` does)."""
    for declared in list(unconfigured.actors.values()):
        declared.broker = broker
        broker.declare_actor(declared)

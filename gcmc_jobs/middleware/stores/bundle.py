"""The stores one middleware stack uses, built from settings and closed together.

:class:`~gcmc_jobs.runtime.Runtime` builds a :class:`Stores` and owns it: it hands each store
to its middleware (:func:`gcmc_jobs.brokers.build_middleware`) and to the operations that
read it (``gcmc-jobs pause``, ``queue_stats``), and closes them with the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine

from gcmc_jobs.middleware.stores.dead_letters import (
    DeadLetterStore,
    SqlDeadLetterStore,
    StubDeadLetterStore,
)
from gcmc_jobs.middleware.stores.dedup import DedupStore, RedisDedupStore, StubDedupStore
from gcmc_jobs.middleware.stores.mail_circuit import (
    CircuitStore,
    RedisCircuitStore,
    StubCircuitStore,
)
from gcmc_jobs.middleware.stores.outbox import OutboxStore, SqlOutboxStore, StubOutboxStore
from gcmc_jobs.middleware.stores.pauses import PauseStore, RedisPauseStore, StubPauseStore
from gcmc_jobs.middleware.stores.provider_rate import (
    RedisTokenBucket,
    StubTokenBucket,
    TokenBucket,
)
from gcmc_jobs.middleware.stores.rate_limits import (
    RateLimitStore,
    RedisRateLimitStore,
    StubRateLimitStore,
)
from gcmc_jobs.middleware.stores.status import (
    RedisStatusStore,
    StatusStore,
    StubStatusStore,
)
from gcmc_jobs.redis_urls import redis_from_url
from gcmc_jobs.settings import Settings

__all__ = ["Stores"]


@dataclass
class Stores:
    """The deduplication, rate-limit, dead-letter, pause, outbox and status stores of one
    stack."""

    dedup: DedupStore
    rate_limits: RateLimitStore
    dead_letters: DeadLetterStore
    pauses: PauseStore
    #: The Redis client the dedup and rate-limit stores share (closed by :meth:`close`).
    redis_client: redis.Redis | None = None
    #: The committed outbox rows the relay takes (``outbox_messages``, on the engine).
    outbox: OutboxStore = field(default_factory=StubOutboxStore)
    #: Message status records (:func:`gcmc_jobs.status`), on the shared Redis client.
    status: StatusStore = field(default_factory=StubStatusStore)
    #: The mail server's circuit breaker state (``MailCircuit``), on the shared client.
    mail_circuit: CircuitStore = field(default_factory=StubCircuitStore)
    #: The provider-wide send-rate bucket (``ProviderRate``), on the shared client.
    provider_rate: TokenBucket = field(default_factory=StubTokenBucket)

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Callable[[], Engine]) -> Stores:
        """Redis stores on ``settings.store_redis_url`` (in-process stubs without one, which
        only work within one process: tests, the embedded demo), and the SQL dead-letter
        store on the engine ``engine()`` returns (called on the first dead letter, so
        building the stores opens no connection)."""
        url = settings.store_redis_url
        dead_letters = SqlDeadLetterStore(engine)
        outbox = SqlOutboxStore(engine)
        if url is None:
            return cls(
                StubDedupStore(),
                StubRateLimitStore(),
                dead_letters,
                StubPauseStore(),
                outbox=outbox,
                status=StubStatusStore(),
            )
        client = redis_from_url(url)
        return cls(
            dedup=RedisDedupStore(client, namespace=settings.namespace),
            rate_limits=RedisRateLimitStore(client, namespace=settings.namespace),
            dead_letters=dead_letters,
            pauses=RedisPauseStore.from_url(url, namespace=settings.namespace),
            redis_client=client,
            outbox=outbox,
            status=RedisStatusStore(client, namespace=settings.namespace),
            mail_circuit=RedisCircuitStore(client, namespace=settings.namespace),
            provider_rate=RedisTokenBucket(client, namespace=settings.namespace),
        )

    @classmethod
    def stubs(cls) -> Stores:
        """In-process stubs only (the stack actors are declared on before ``configure()``)."""
        return cls(StubDedupStore(), StubRateLimitStore(), StubDeadLetterStore(), StubPauseStore())

    def close(self) -> None:
        """Close the Redis connections the stores hold (they reconnect if used again)."""
        self.pauses.close()
        self.outbox.close()
        self.status.close()
        if self.redis_client is not None:
            self.redis_client.close()

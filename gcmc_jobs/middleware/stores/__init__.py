"""The stores behind the middleware: each an interface, a Redis/SQL implementation and a stub.

=================  ==========================================================================
module             store
=================  ==========================================================================
``dedup``          :class:`DedupStore`: deduplication claims
``rate_limits``    :class:`RateLimitStore`: per-key bookings per window
``dead_letters``   :class:`DeadLetterStore`: messages that failed for good (SQL table)
``pauses``         :class:`PauseStore`: which queues are paused
``outbox``         :class:`OutboxStore`: committed outbox rows, taken by the relay (SQL table)
``status``         :class:`StatusStore`: each message's last known state (Redis hash + TTL)
``mail_circuit``   :class:`CircuitStore`: the mail server's circuit breaker (Redis hash)
``provider_rate``  :class:`TokenBucket`: the provider-wide send rate's bucket (Redis hash)
``bundle``         :class:`Stores`: those of one stack, built from settings, closed together
=================  ==========================================================================

Stub stores keep their state in the process: they are for tests and single-process use only
(two worker processes with stub stores do not see each other's keys or counters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcmc_jobs._lazy import exports

if TYPE_CHECKING:
    from gcmc_jobs.middleware.stores.bundle import Stores
    from gcmc_jobs.middleware.stores.dead_letters import (
        DeadLetterFilter,
        DeadLetterRecord,
        DeadLetterStore,
        SqlDeadLetterStore,
        StubDeadLetterStore,
    )
    from gcmc_jobs.middleware.stores.dedup import (
        ClaimResult,
        DedupStore,
        RedisDedupStore,
        StubDedupStore,
    )
    from gcmc_jobs.middleware.stores.mail_circuit import (
        CircuitState,
        CircuitStore,
        RedisCircuitStore,
        StubCircuitStore,
    )
    from gcmc_jobs.middleware.stores.outbox import (
        OutboxRow,
        OutboxStore,
        SqlOutboxStore,
        StubOutboxStore,
    )
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

__all__ = [
    "CircuitState",
    "CircuitStore",
    "ClaimResult",
    "DeadLetterFilter",
    "DeadLetterRecord",
    "DeadLetterStore",
    "DedupStore",
    "OutboxRow",
    "OutboxStore",
    "PauseStore",
    "RateLimitStore",
    "RedisCircuitStore",
    "RedisDedupStore",
    "RedisPauseStore",
    "RedisRateLimitStore",
    "RedisStatusStore",
    "RedisTokenBucket",
    "SqlDeadLetterStore",
    "SqlOutboxStore",
    "StatusStore",
    "Stores",
    "StubCircuitStore",
    "StubDeadLetterStore",
    "StubDedupStore",
    "StubOutboxStore",
    "StubPauseStore",
    "StubRateLimitStore",
    "StubStatusStore",
    "StubTokenBucket",
    "TokenBucket",
]

# Each public name and the module that defines it, imported on first use
# (gcmc_jobs._lazy): importing this package loads none of them.
__getattr__, __dir__ = exports(
    __name__,
    {
        "Stores": "gcmc_jobs.middleware.stores.bundle",
        "DeadLetterFilter": "gcmc_jobs.middleware.stores.dead_letters",
        "DeadLetterRecord": "gcmc_jobs.middleware.stores.dead_letters",
        "DeadLetterStore": "gcmc_jobs.middleware.stores.dead_letters",
        "SqlDeadLetterStore": "gcmc_jobs.middleware.stores.dead_letters",
        "StubDeadLetterStore": "gcmc_jobs.middleware.stores.dead_letters",
        "ClaimResult": "gcmc_jobs.middleware.stores.dedup",
        "DedupStore": "gcmc_jobs.middleware.stores.dedup",
        "RedisDedupStore": "gcmc_jobs.middleware.stores.dedup",
        "StubDedupStore": "gcmc_jobs.middleware.stores.dedup",
        "OutboxRow": "gcmc_jobs.middleware.stores.outbox",
        "OutboxStore": "gcmc_jobs.middleware.stores.outbox",
        "SqlOutboxStore": "gcmc_jobs.middleware.stores.outbox",
        "StubOutboxStore": "gcmc_jobs.middleware.stores.outbox",
        "PauseStore": "gcmc_jobs.middleware.stores.pauses",
        "RedisPauseStore": "gcmc_jobs.middleware.stores.pauses",
        "StubPauseStore": "gcmc_jobs.middleware.stores.pauses",
        "RateLimitStore": "gcmc_jobs.middleware.stores.rate_limits",
        "RedisRateLimitStore": "gcmc_jobs.middleware.stores.rate_limits",
        "StubRateLimitStore": "gcmc_jobs.middleware.stores.rate_limits",
        "RedisStatusStore": "gcmc_jobs.middleware.stores.status",
        "StatusStore": "gcmc_jobs.middleware.stores.status",
        "StubStatusStore": "gcmc_jobs.middleware.stores.status",
        "CircuitState": "gcmc_jobs.middleware.stores.mail_circuit",
        "CircuitStore": "gcmc_jobs.middleware.stores.mail_circuit",
        "RedisCircuitStore": "gcmc_jobs.middleware.stores.mail_circuit",
        "StubCircuitStore": "gcmc_jobs.middleware.stores.mail_circuit",
        "TokenBucket": "gcmc_jobs.middleware.stores.provider_rate",
        "RedisTokenBucket": "gcmc_jobs.middleware.stores.provider_rate",
        "StubTokenBucket": "gcmc_jobs.middleware.stores.provider_rate",
    },
)

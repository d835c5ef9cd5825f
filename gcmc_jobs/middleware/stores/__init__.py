"""The stores behind the middleware: each an interface, a Redis/SQL implementation and a stub.

Stub stores keep their state in the process: they are for tests and single-process use only
(two worker processes with stub stores do not see each other's keys or counters).
"""

from __future__ import annotations

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
from gcmc_jobs.middleware.stores.rate_limits import (
    RateLimitStore,
    RedisRateLimitStore,
    StubRateLimitStore,
)

__all__ = [
    "ClaimResult",
    "DeadLetterFilter",
    "DeadLetterRecord",
    "DeadLetterStore",
    "DedupStore",
    "RateLimitStore",
    "RedisDedupStore",
    "RedisRateLimitStore",
    "SqlDeadLetterStore",
    "StubDeadLetterStore",
    "StubDedupStore",
    "StubRateLimitStore",
]

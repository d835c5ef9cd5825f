"""The middleware order of gcmc-jobs' broker is pinned: each position has a reason
(documented in ``gcmc_jobs.brokers``); change both together."""

from __future__ import annotations

from sqlalchemy import Engine

from gcmc_jobs import brokers as broker
from gcmc_jobs.middleware.stores import Stores
from gcmc_jobs.settings import Settings

EXPECTED = [
    "AgeLimit",
    "TimeLimit",
    "ShutdownNotifications",
    "Callbacks",
    "Pipelines",
    "PeriodiqMiddleware",
    "Retries",
    "Pause",
    "MailCircuit",
    "Deduplication",
    "ProviderRate",
    "RateLimits",
    "StatusTracking",
    "DeadLetters",
    "StructuredLogging",
    "Metrics",
    "WorkerRegistry",
    "CurrentMessage",
    "OutboxRelay",
]


def _no_engine() -> Engine:
    raise AssertionError("building the stack must not ask for the engine")


def test_the_middleware_order_is_the_documented_one() -> None:
    stack = broker.build_middleware(Settings.model_construct(), Stores.stubs())
    names = [type(m).__name__ for m in stack]
    assert names == EXPECTED
    documented = [
        line.split()[1]
        for line in (broker.__doc__ or "").splitlines()
        if line.strip()[:2].strip().isdigit()
    ]
    assert documented == EXPECTED


def test_without_a_redis_url_the_stores_are_in_process_stubs() -> None:
    from gcmc_jobs.middleware import Deduplication, RateLimits, StubDedupStore, StubRateLimitStore

    settings = Settings(broker_url="stub://", redis_url=None)
    stack = broker.build_middleware(settings, Stores.from_settings(settings, engine=_no_engine))
    (dedup,) = [m for m in stack if isinstance(m, Deduplication)]
    (limits,) = [m for m in stack if isinstance(m, RateLimits)]
    assert isinstance(dedup.store, StubDedupStore)
    assert isinstance(limits.store, StubRateLimitStore)

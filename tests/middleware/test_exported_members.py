"""The middleware's public names, pinned: other engineers and host applications use them."""

from __future__ import annotations

import gcmc_jobs.middleware

PUBLIC = {
    "ClaimResult",
    "DeadLetterFilter",
    "DeadLetterRecord",
    "DeadLetterStore",
    "DeadLetters",
    "DedupStore",
    "DeduplicatedActor",
    "Deduplication",
    "DuplicateMessage",
    "MailCircuit",
    "Metrics",
    "OutboxRelay",
    "OutboxRow",
    "OutboxStore",
    "Pause",
    "PauseStore",
    "ProviderRate",
    "RateLimitDeferralFailed",
    "RateLimitStore",
    "RateLimits",
    "RedisDedupStore",
    "RedisPauseStore",
    "RedisRateLimitStore",
    "RedisStatusStore",
    "SqlDeadLetterStore",
    "SqlOutboxStore",
    "StatusStore",
    "StatusTracking",
    "Stores",
    "StructuredLogging",
    "StubDeadLetterStore",
    "StubDedupStore",
    "StubOutboxStore",
    "StubPauseStore",
    "StubRateLimitStore",
    "StubStatusStore",
    "WorkerRegistry",
    "WorkerStats",
}


def test_the_middleware_package_exports_exactly_its_public_names() -> None:
    assert set(gcmc_jobs.middleware.__all__) == PUBLIC
    for name in gcmc_jobs.middleware.__all__:
        assert hasattr(gcmc_jobs.middleware, name), name


def test_the_actor_options_are_the_documented_contract() -> None:
    from gcmc_jobs.middleware.stores import StubDedupStore, StubRateLimitStore

    dedup = gcmc_jobs.middleware.Deduplication(StubDedupStore())
    limits = gcmc_jobs.middleware.RateLimits(StubRateLimitStore())
    assert dedup.actor_options == {"dedup_key", "dedup_ttl"}
    assert limits.actor_options == {"rate_limit_key", "rate_limit_class"}
    doc = gcmc_jobs.middleware.__doc__ or ""
    for option in ("dedup_key", "dedup_ttl", "correlation_id", "tenant_id", "rate_limit_key",
                   "rate_limit_class"):  # fmt: skip
        assert f"``{option}``" in doc

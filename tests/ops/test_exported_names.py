"""The operations API, pinned: what host applications and scripts may import."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "gcmc_jobs.ops.queue_stats": {"QueueStats", "queue_stats", "redis_queue_stats"},
    "gcmc_jobs.ops.light_redis": {"LightRedis", "RedisAddress", "parse_url"},
    "gcmc_jobs.ops.known_queues": {"known_queues"},
    "gcmc_jobs.ops.redis_client": {"redis_client"},
    "gcmc_jobs.ops.live_workers": {"LiveWorkers", "live_workers"},
    "gcmc_jobs.ops.failures": {"Failure", "FailureKind", "explain", "mask_secrets"},
    "gcmc_jobs.ops.pauses": {"pause_queue", "pause_store_for", "paused_queues", "resume_queue"},
    "gcmc_jobs.middleware.stores.pauses": {"PauseStore", "RedisPauseStore", "StubPauseStore"},
    "gcmc_jobs.ops.health": {
        "ALL_CHECKS",
        "READINESS_CHECKS",
        "CheckResult",
        "HealthReport",
        "Status",
        "check_health",
    },
    "gcmc_jobs.middleware.pause": {"Pause"},
    "gcmc_jobs.ops.mail_circuit": {
        "circuit_store_for",
        "mail_circuit_state",
        "reset_mail_circuit",
    },
    "gcmc_jobs.middleware.mail_circuit": {"MailCircuit", "STATE_VALUES"},
    "gcmc_jobs.middleware.provider_rate": {"ProviderRate", "reserved_tokens"},
    "gcmc_jobs.middleware.stores.mail_circuit": {
        "CircuitState",
        "CircuitStore",
        "RedisCircuitStore",
        "StubCircuitStore",
    },
    "gcmc_jobs.middleware.stores.provider_rate": {
        "RedisTokenBucket",
        "StubTokenBucket",
        "TokenBucket",
    },
    "gcmc_jobs.middleware.worker_registry": {"WorkerRegistry"},
    "gcmc_jobs.http": {"create_app"},
    "gcmc_jobs.demo.serve": {"DemoDashboard", "demo_dashboard"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_operations_module_exports_exactly_its_public_names(module: str) -> None:
    imported = importlib.import_module(module)
    assert set(imported.__all__) == PUBLIC[module]
    for name in imported.__all__:
        assert hasattr(imported, name)

"""The ``mail_circuit`` health check and ``gcmc_jobs.ops.mail_circuit`` on the state the
workers share in Redis: each state, and the breaker switched off."""

from __future__ import annotations

from datetime import UTC, datetime

from gcmc_jobs.ops.health import check_health
from gcmc_jobs.ops.mail_circuit import circuit_store_for, mail_circuit_state, reset_mail_circuit
from gcmc_jobs.settings import Settings


def test_the_health_check_follows_the_breaker_through_its_states(
    gcmc_redis_url: str, ops_namespace: str
) -> None:
    settings = Settings(broker_url=gcmc_redis_url, namespace=ops_namespace)
    store = circuit_store_for(settings)
    now = int(datetime.now(UTC).timestamp() * 1000)

    def status() -> tuple[str, str]:
        result = check_health(settings, checks=["mail_circuit"]).checks["mail_circuit"]
        return result.status, result.detail

    assert status() == ("ok", "mail circuit closed")
    store.record_failure(
        now_ms=now, threshold=2, min_backoff_ms=1_000, max_backoff_ms=8_000, error="421 x"
    )
    assert status() == ("ok", "mail circuit closed (1 delivery failure(s) in a row)")
    store.record_failure(
        now_ms=now, threshold=2, min_backoff_ms=1_000, max_backoff_ms=8_000, error="421 x"
    )
    assert status()[0] == "unhealthy"
    assert "last error: 421 x" in status()[1]
    store.claim_probe(now_ms=now + 1_000, max_backoff_ms=8_000)
    store.probe_succeeded(now_ms=now + 1_001)
    assert status()[0] == "warning"
    assert mail_circuit_state(settings).state == "half_open"

    # Switched off, the breaker never holds: nothing to report
    off = settings.model_copy(update={"mail_breaker": False})
    assert check_health(off, checks=["mail_circuit"]).checks["mail_circuit"].status == "ok"
    assert reset_mail_circuit(settings).state == "closed"
    assert status()[0] == "ok"

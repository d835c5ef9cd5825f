"""Health checks that the backing services answer: ``broker``, ``redis``, ``database``.

These are the readiness checks (``/health/ready``): can this process reach what it needs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.settings import Settings

__all__ = ["check_broker", "check_database", "check_redis"]


def check_broker(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy when the broker does not answer (a PING, or an AMQP connection)."""
    url = settings.broker_url.get_secret_value()
    timeout_ms = settings.health_timeout_ms
    if settings.broker_kind == "redis":
        client = redis_client(url, timeout_ms=timeout_ms)
        try:
            client.ping()
        finally:
            client.close()
        return CheckResult("ok", "Redis broker answers")
    if settings.broker_kind == "amqp":
        # Lazy: pika is only needed with a RabbitMQ broker, and importing it is not free.
        import pika

        parameters = pika.URLParameters(url)
        parameters.socket_timeout = timeout_ms / 1000
        parameters.connection_attempts = 1
        pika.BlockingConnection(parameters).close()
        return CheckResult("ok", "RabbitMQ broker answers")
    return CheckResult("ok", "in-process stub broker")


def check_redis(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy when the stores' Redis does not answer or may evict keys; a warning when
    its persistence is off, CONFIG is refused, or there is no Redis at all."""
    url = settings.store_redis_url
    if url is None:
        return CheckResult("warning", "no Redis: stores are in-process stubs (one process only)")
    client = redis_client(url, timeout_ms=settings.health_timeout_ms)
    try:
        client.ping()
        try:
            config = client.config_get("maxmemory-policy")
            config.update(client.config_get("save"))
            config.update(client.config_get("appendonly"))
        except Exception as exc:  # managed Redis often refuses CONFIG
            return CheckResult("warning", f"Redis answers, but CONFIG GET is refused: {exc}")
    finally:
        client.close()
    policy = config.get("maxmemory-policy", "")
    persistence = {"save": config.get("save", ""), "appendonly": config.get("appendonly", "")}
    data = {"maxmemory_policy": policy, **persistence}
    if policy != "noeviction":
        return CheckResult(
            "unhealthy",
            f"maxmemory-policy is {policy!r}: Redis may evict queued messages under memory "
            "pressure; set it to 'noeviction'",
            data,
        )
    if not persistence["save"] and persistence["appendonly"] != "yes":
        return CheckResult(
            "warning",
            'persistence is off (save "" and appendonly no): a restart loses every queued message',
            data,
        )
    return CheckResult("ok", "Redis answers, noeviction, persistence on", data)


def check_database(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy when ``SELECT 1`` fails."""
    assert engine is not None
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return CheckResult("ok", f"{engine.dialect.name} answers")

"""Health checks that the backing services answer: ``broker``, ``redis``, ``database``.

These are the readiness checks (``/health/ready``): can this process reach what it needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.settings import Settings

__all__ = ["MEMORY_WARNING_SHARE", "check_broker", "check_database", "check_redis", "redis_figures"]


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


#: Used memory above this share of ``maxmemory`` is a warning: with ``noeviction`` a full
#: Redis refuses every write, enqueues included.
MEMORY_WARNING_SHARE = 0.9


def redis_figures(client: Any) -> dict[str, Any]:
    """What ``INFO`` tells of a Redis: ``used_memory_bytes``, ``maxmemory_bytes`` (0: no
    limit), ``evicted_keys`` (since it started), ``connected_clients`` and ``keys`` per
    database (``{"db0": {"keys": n, "expires": m}}``). One round trip."""
    info = client.info("all")
    keys = {
        name: {"keys": int(value.get("keys", 0)), "expires": int(value.get("expires", 0))}
        for name, value in info.items()
        if name.startswith("db") and name[2:].isdigit() and isinstance(value, dict)
    }
    return {
        "used_memory_bytes": int(info.get("used_memory", 0)),
        "maxmemory_bytes": int(info.get("maxmemory", 0)),
        "evicted_keys": int(info.get("evicted_keys", 0)),
        "connected_clients": int(info.get("connected_clients", 0)),
        "keys": keys,
    }


def check_redis(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """Unhealthy when the stores' Redis does not answer or may evict keys; a warning when
    its persistence is off, its memory is over 90 % of ``maxmemory``, CONFIG is refused, or
    there is no Redis at all. Its data: the eviction and persistence settings and
    :func:`redis_figures` (memory, evicted keys, clients, keys per database)."""
    url = settings.store_redis_url
    if url is None:
        return CheckResult("warning", "no Redis: stores are in-process stubs (one process only)")
    client = redis_client(url, timeout_ms=settings.health_timeout_ms)
    try:
        client.ping()
        figures = redis_figures(client)
        try:
            config = client.config_get("maxmemory-policy")
            config.update(client.config_get("save"))
            config.update(client.config_get("appendonly"))
        except Exception as exc:  # managed Redis often refuses CONFIG
            return CheckResult(
                "warning", f"Redis answers, but CONFIG GET is refused: {exc}", figures
            )
    finally:
        client.close()
    policy = config.get("maxmemory-policy", "")
    persistence = {"save": config.get("save", ""), "appendonly": config.get("appendonly", "")}
    data = {"maxmemory_policy": policy, **persistence, **figures}
    if policy != "noeviction":
        return CheckResult(
            "unhealthy",
            f"maxmemory-policy is {policy!r}: Redis may evict queued messages under memory "
            "pressure; set it to 'noeviction'",
            data,
        )
    used, limit = figures["used_memory_bytes"], figures["maxmemory_bytes"]
    if limit and used > MEMORY_WARNING_SHARE * limit:
        return CheckResult(
            "warning",
            f"Redis uses {used / limit:.0%} of its maxmemory ({used} of {limit} bytes): "
            "when full it refuses every write, enqueues included",
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

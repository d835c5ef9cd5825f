"""The few settings a light command reads, straight from ``GCMC_JOBS_*``, without building
:class:`~gcmc_jobs.settings.Settings` (pydantic-settings and the model cost ~0.08 s of the
command's start-up; issue 17, item 3).

:func:`redis_command_settings` accepts only values it can check as strictly as
:class:`~gcmc_jobs.settings.Settings` would; for anything else (a value it does not
recognise, a broker that is not Redis, a URL :func:`~gcmc_jobs.ops.light_redis.parse_url`
leaves to redis-py) it returns None and the command builds the full settings, which
explain any invalid one as every command does. The command reads and checks only these
settings: an invalid setting it does not use (``GCMC_JOBS_EMAIL_URL``...) does not stop it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from gcmc_jobs.ops.light_redis import RedisAddress, parse_url

__all__ = ["RedisCommandSettings", "redis_command_settings"]

# Settings.namespace's pattern, and the defaults of the fields read here.
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]+")
_DEFAULTS = {
    "broker_url": "stub://",
    "redis_url": None,
    "namespace": "gcmc_jobs",
    "health_timeout_ms": "2000",
}


@dataclass(frozen=True)
class RedisCommandSettings:
    """What a command that only reads the Redis broker and stores needs: their addresses,
    the namespace, and the bound on each network call (``GCMC_JOBS_HEALTH_TIMEOUT_MS``)."""

    broker: RedisAddress
    stores: RedisAddress
    namespace: str
    timeout_ms: int


def _read(environ: dict[str, str]) -> dict[str, str | None] | None:
    """The values of the fields read here, as pydantic-settings finds them (names matched
    case-insensitively); None when one is set under two spellings."""
    found: dict[str, str | None] = dict(_DEFAULTS)
    seen: set[str] = set()
    for name, value in environ.items():
        field = name.lower().removeprefix("gcmc_jobs_")
        if field in _DEFAULTS and name.lower().startswith("gcmc_jobs_"):
            if field in seen:
                return None
            seen.add(field)
            found[field] = value
    return found


def redis_command_settings(
    environ: dict[str, str] | None = None,
) -> RedisCommandSettings | None:
    """The settings of a Redis-only command from ``environ`` (default: ``os.environ``), or
    None when the full :class:`~gcmc_jobs.settings.Settings` must be built instead."""
    values = _read(dict(os.environ if environ is None else environ))
    if values is None:
        return None
    broker_url, redis_url = values["broker_url"], values["redis_url"]
    namespace, timeout = values["namespace"], values["health_timeout_ms"]
    if broker_url is None or namespace is None or timeout is None:
        return None
    broker = parse_url(broker_url)
    stores = parse_url(redis_url) if redis_url is not None else broker
    if broker is None or stores is None:
        return None
    if not _NAMESPACE.fullmatch(namespace):
        return None
    if not (timeout.isascii() and timeout.isdigit()) or int(timeout) < 1:
        return None
    return RedisCommandSettings(
        broker=broker, stores=stores, namespace=namespace, timeout_ms=int(timeout)
    )

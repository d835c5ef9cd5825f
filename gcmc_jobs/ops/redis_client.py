"""The Redis client operations use: every call bounded, so a dead Redis fails a command or a
health check quickly instead of hanging it."""

from __future__ import annotations

from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

from gcmc_jobs.redis_urls import redis_from_url

__all__ = ["redis_client"]


def redis_client(url: str, *, timeout_ms: int = 2_000) -> Any:
    """A ``redis.Redis`` on ``url`` (plain or ``redis+sentinel://``:
    :func:`~gcmc_jobs.redis_urls.redis_from_url`) whose connect and every call give up
    after ``timeout_ms``, retried once at once (a pooled connection the server closed)
    instead of redis-py's ten retries with backoff (some seconds against a Redis that is
    down)."""
    seconds = timeout_ms / 1000
    return redis_from_url(
        url,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        retry=Retry(NoBackoff(), 1),
    )

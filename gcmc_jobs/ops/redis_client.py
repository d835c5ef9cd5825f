"""The Redis client operations use: every call bounded, so a dead Redis fails a command or a
health check quickly instead of hanging it."""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["redis_client"]


def redis_client(url: str, *, timeout_ms: int = 2_000) -> Any:
    """A ``redis.Redis`` on ``url`` whose connect and every call give up after ``timeout_ms``."""
    seconds = timeout_ms / 1000
    return redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds)

"""Every Redis key name the middleware's stores write, in one place.

All keys start with the deployment's namespace (``Settings.namespace``), so two deployments
can share one Redis and a test session can delete exactly its own keys.
"""

from __future__ import annotations

__all__ = ["dedup_key", "rate_limit_key"]


def dedup_key(namespace: str, key: str) -> str:
    """The string key holding ``p:<message id>`` (pending) or ``d:<message id>`` (done)."""
    return f"{namespace}:dedup:{key}"


def rate_limit_key(namespace: str, limit_class: str, key: str) -> str:
    """The prefix of one rate-limited entity's counters; the script appends ``:<window no>``."""
    return f"{namespace}:ratelimit:{limit_class}:{key}"

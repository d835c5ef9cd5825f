"""Which queues exist: the package's own, and those the registered Redis workers consume."""

from __future__ import annotations

import json
from collections.abc import Iterable

from gcmc_jobs import queue_names
from gcmc_jobs.ops.redis_client import redis_client
from gcmc_jobs.redis_keys import workers_key
from gcmc_jobs.settings import Settings

__all__ = ["known_queues"]


def known_queues(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """The package's queues, the queues registered Redis workers consume, and ``extra``."""
    names = set(queue_names.ALL) | set(extra)
    if settings.broker_kind == "redis":
        client = redis_client(settings.broker_url.get_secret_value())
        try:
            for raw in client.hvals(workers_key(settings.namespace)):
                names.update(json.loads(raw).get("queues", []))
        finally:
            client.close()
    return sorted(names)

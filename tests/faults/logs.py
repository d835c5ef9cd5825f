"""Reading what worker processes logged: Dramatiq's own lines and gcmc-jobs' JSON events."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dead_lettered", "events", "queue_is_drained", "retry_events"]

_DRAMATIQ_RETRY = re.compile(r"Retrying message '?([0-9a-f-]{36})'? in (\d+) milliseconds")


def events(log_text: str) -> list[dict[str, Any]]:
    """Every JSON object logged on its own line (gcmc-jobs' structured events)."""
    found: list[dict[str, Any]] = []
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            value = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def retry_events(log_text: str) -> list[str]:
    """Message ids of every retry logged, by Dramatiq's ``Retries`` or as a JSON event."""
    ids = [match.group(1) for match in _DRAMATIQ_RETRY.finditer(log_text)]
    if ids:
        return ids
    return [str(e.get("message_id")) for e in events(log_text) if e.get("event") == "retried"]


def queue_is_drained(client: Any, namespace: str, queue: str) -> bool:
    """True when ``queue`` holds no message: none ready, delayed, unacked or dead-lettered.

    Dramatiq's Redis broker keeps a message's body in ``<queue>.msgs`` from enqueue until it
    is acknowledged (and in ``<queue>.DQ.msgs`` while delayed), so empty hashes mean every
    message sent was acknowledged.
    """
    keys = [f"{namespace}:{queue}.msgs", f"{namespace}:{queue}.DQ.msgs"]
    return all(client.hlen(key) == 0 for key in keys) and client.llen(f"{namespace}:{queue}") == 0


def dead_lettered(client: Any, namespace: str, queue: str) -> int:
    """How many messages sit in the broker's own dead-letter queue (``<queue>.XQ``)."""
    return int(client.zcard(f"{namespace}:{queue}.XQ"))

"""What every Python peer app of ``benchmarks/peers.py`` shares (standard library + redis-py).

The driver passes everything through the environment:

- ``BENCH_REDIS_URL``: the Redis every system uses;
- ``BENCH_PREFIX``: the key prefix / namespace of this system and round (every key the run
  writes contains it, so the driver deletes exactly those);
- ``BENCH_QUEUE``: the queue name; ``BENCH_COUNTER``: the completion counter's key;
- ``BENCH_RATE_LIMIT``: W3's per-key limit (never reached); ``BENCH_KEYS``: W3's key count;
- ``BENCH_CHUNK``: jobs per bulk call where a system's bulk API takes a list.

Each job function finishes with one Lua call, :data:`COUNT_SCRIPT` (an ``INCR`` of the
counter), which is how the driver counts completed jobs independently of each system's own
bookkeeping. ``python APP.py enqueue W N`` enqueues ``N`` jobs of workload ``W`` and prints
one JSON line (:func:`report`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("BENCH_PREFIX", "bench_peers")
QUEUE = os.environ.get("BENCH_QUEUE", "bench")
COUNTER = os.environ.get("BENCH_COUNTER", f"{PREFIX}:done")
RATE_LIMIT = int(os.environ.get("BENCH_RATE_LIMIT", "1000000"))
KEYS = int(os.environ.get("BENCH_KEYS", "1000"))
CHUNK = int(os.environ.get("BENCH_CHUNK", "1000"))

#: The one Lua call each finished job makes.
COUNT_SCRIPT = "return redis.call('INCR', KEYS[1])"


def rate_key(i: int) -> str:
    """W3's rate-limit key of job ``i`` (``BENCH_KEYS`` distinct keys)."""
    return f"k{i % KEYS}"


def dedup_key(i: int) -> str:
    """W3's deduplication key of job ``i`` (one per job: nothing is a duplicate)."""
    return f"w3-{i}"


def chunks(n: int) -> list[range]:
    """``range(n)`` cut into ``CHUNK``-sized pieces."""
    return [range(start, min(n, start + CHUNK)) for start in range(0, n, CHUNK)]


def parse_args() -> tuple[str, int]:
    """``enqueue W N`` from the command line: the workload and the number of jobs."""
    if len(sys.argv) != 4 or sys.argv[1] != "enqueue" or sys.argv[2] not in ("W1", "W2", "W3"):
        sys.exit(f"usage: {sys.argv[0]} enqueue W1|W2|W3 N")
    return sys.argv[2], int(sys.argv[3])


def timed(enqueue: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of ``enqueue()`` (building the jobs and sending them)."""
    wall, cpu = time.perf_counter(), time.process_time()
    enqueue()
    return time.perf_counter() - wall, time.process_time() - cpu


def report(*, seconds: float, cpu_seconds: float, queued: int, api: str) -> None:
    """The enqueue step's result, as the one JSON line the driver reads from stdout."""
    line = {"seconds": seconds, "cpu_seconds": cpu_seconds, "queued": queued, "api": api}
    print(json.dumps(line), flush=True)

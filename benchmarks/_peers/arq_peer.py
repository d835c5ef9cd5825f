"""arq for ``benchmarks/peers.py``.

Workers: ``arq arq_peer.WorkerSettings`` (twice), ``max_jobs = 8``, results not kept (as no
other system here keeps them). arq has no key prefix: the queue is ``<prefix>:bench`` and
every job id starts with the prefix, so every key the run writes contains it.

- W1/W2: ``noop``; arq has no bulk enqueue: ``enqueue_job`` in a loop, 50 at a time with
  ``asyncio.gather`` (each call is a ``WATCH``/``MULTI`` transaction of its own).
- W3: ``limited`` with ``_job_id`` deduplication (arq refuses a job id that is queued or
  running); arq has no rate limits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import peer_common as c
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import func

QUEUE = f"{c.PREFIX}:{c.QUEUE}"
GATHER = 50


async def startup(ctx: dict[str, Any]) -> None:
    ctx["count"] = ctx["redis"].register_script(c.COUNT_SCRIPT)


async def noop(ctx: dict[str, Any], n: int) -> None:
    await ctx["count"](keys=[c.COUNTER])


async def limited(ctx: dict[str, Any], n: int, key: str) -> None:
    await ctx["count"](keys=[c.COUNTER])


class WorkerSettings:
    """What ``arq arq_peer.WorkerSettings`` runs."""

    functions = [func(noop, name="noop"), func(limited, name="limited")]
    redis_settings = RedisSettings.from_dsn(c.REDIS_URL)
    queue_name = QUEUE
    max_jobs = 8
    keep_result = 0
    on_startup = startup


async def amain() -> None:
    workload, n = c.parse_args()
    pool = await create_pool(RedisSettings.from_dsn(c.REDIS_URL), default_queue_name=QUEUE)
    await pool.ping()

    def job(i: int) -> Any:
        if workload == "W3":
            return pool.enqueue_job("limited", i, c.rate_key(i), _job_id=f"{c.PREFIX}:{i}")
        return pool.enqueue_job("noop", i, _job_id=f"{c.PREFIX}:{i}")

    async def enqueue() -> None:
        for start in range(0, n, GATHER):
            await asyncio.gather(*(job(i) for i in range(start, min(n, start + GATHER))))

    loop = asyncio.get_running_loop()
    wall, cpu = loop.time(), time.process_time()
    await enqueue()
    seconds, cpu_seconds = loop.time() - wall, time.process_time() - cpu
    queued = await pool.zcard(QUEUE)
    await pool.aclose()
    c.report(
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        queued=queued,
        api=f"enqueue_job in a loop, {GATHER} at a time (asyncio.gather)",
    )


if __name__ == "__main__":
    asyncio.run(amain())

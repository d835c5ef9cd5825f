"""RQ for ``benchmarks/peers.py``.

Workers: ``rq worker-pool -n 8 -w rq.SimpleWorker bench`` (twice: 2 pools of 8 worker
processes that run jobs in-process; RQ's default class forks a work horse per job, an order
of magnitude slower), ``RQ_KEY_PREFIX`` set to the run's prefix
(the driver sets it before RQ is imported). Results are not kept (``result_ttl=0``).

Jobs name their function as ``"rq_peer.noop"`` (this file runs as ``__main__`` to enqueue).

- W1/W2: ``noop``; enqueued with ``Queue.enqueue_many`` (pipelined), 1,000 jobs a call.
- W3: ``limited`` with an ``RateLimit`` per key (RQ 3's per-key limit is a concurrency cap,
  set far above what is reached); no deduplication: RQ refuses ``unique=True`` on a
  rate-limited job. Rate-limited jobs cannot be pipelined: ``enqueue`` in a loop.
"""

from __future__ import annotations

import peer_common as c
from redis import Redis
from rq import Queue, RateLimit, get_current_job

connection = Redis.from_url(c.REDIS_URL)
count = connection.register_script(c.COUNT_SCRIPT)


def noop(n: int) -> None:
    job = get_current_job()
    count(keys=[c.COUNTER], client=job.connection if job is not None else connection)


def limited(n: int, key: str) -> None:
    noop(n)


def main() -> None:
    workload, n = c.parse_args()
    connection.ping()
    queue = Queue(c.QUEUE, connection=connection)

    def enqueue() -> None:
        if workload == "W3":
            for i in range(n):
                key = c.rate_key(i)
                queue.enqueue(
                    "rq_peer.limited", i, key, rate_limit=RateLimit(key, c.RATE_LIMIT), result_ttl=0
                )
        else:
            for part in c.chunks(n):
                jobs = [Queue.prepare_data("rq_peer.noop", (i,), result_ttl=0) for i in part]
                queue.enqueue_many(jobs)

    seconds, cpu = c.timed(enqueue)
    api = "enqueue() in a loop" if workload == "W3" else "Queue.enqueue_many"
    c.report(seconds=seconds, cpu_seconds=cpu, queued=queue.count, api=api)


if __name__ == "__main__":
    main()

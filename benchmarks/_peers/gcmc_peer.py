"""gcmc-jobs for ``benchmarks/peers.py``: the whole stack, through gcmc-jobs' RedisBroker.

Loaded as ``gcmc_jobs.worker`` is (``GCMC_JOBS_*`` settings, ``configure_logging``,
``configure(set_global=True)``), plus the benchmark's actors on the configured broker.
Workers: ``dramatiq gcmc_peer --processes 2 --threads 8 --queues bench``.

- W1/W2: ``noop``; enqueued with ``gcmc_jobs.brokers.bulk.enqueue_many`` (chunks of 1,000).
- W3: ``limited``: a ``dedup_key`` per job and a ``rate_limit_key`` over 1,000 keys
  (``GCMC_JOBS_RATE_LIMIT`` set far above what a key receives): both mechanisms.
"""

from __future__ import annotations

import dramatiq
import peer_common as c
import redis

from gcmc_jobs.bootstrap import configure
from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.logging import configure_logging
from gcmc_jobs.settings import Settings

settings = Settings()
configure_logging(settings, buffer_ms=settings.log_buffer_ms)  # as gcmc_jobs.worker does
broker = configure(settings, set_global=True).broker
client = redis.Redis.from_url(c.REDIS_URL)
count = client.register_script(c.COUNT_SCRIPT)


@dramatiq.actor(broker=broker, queue_name=c.QUEUE)
def noop(n: int) -> None:
    count(keys=[c.COUNTER])


@dramatiq.actor(broker=broker, queue_name=c.QUEUE, dedup_key="w3-{n}", rate_limit_key="{key}")
def limited(n: int, key: str) -> None:
    count(keys=[c.COUNTER])


def main() -> None:
    workload, n = c.parse_args()
    client.ping()

    def enqueue() -> None:
        if workload == "W3":
            messages = [limited.message(n=i, key=c.rate_key(i)) for i in range(n)]
        else:
            messages = [noop.message(i) for i in range(n)]
        enqueue_many(broker, messages, chunk_size=c.CHUNK)

    seconds, cpu = c.timed(enqueue)
    queued = client.hlen(f"{c.PREFIX}:{c.QUEUE}.msgs")
    c.report(seconds=seconds, cpu_seconds=cpu, queued=queued, api="enqueue_many")


if __name__ == "__main__":
    main()

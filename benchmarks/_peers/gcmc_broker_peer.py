"""gcmc-jobs' broker alone for ``benchmarks/peers.py``: the ceiling of middleware work.

gcmc-jobs' own ``RedisBroker`` (its consumer: batched fetch, decode, the wait for freed
prefetch, batched acknowledgements; the ``WorkQueues`` it puts first in its middleware, its
worker's work queue and hand-off) with Dramatiq's default middleware, built as
``benchmarks/_worker_overhead_app.py``'s ``bare_ours`` mode builds it, and none of
gcmc-jobs' middleware stack: what gcmc-jobs' workers would cost if every middleware of the
stack cost nothing. Workers: ``dramatiq gcmc_broker_peer --processes 2 --threads 8 --queues
bench``.

- W1/W2: ``noop``, the same actor and counting call as ``gcmc_peer``; enqueued with
  ``gcmc_jobs.brokers.bulk.enqueue_many`` (chunks of 1,000), which needs no middleware of
  the stack: on this broker it calls Dramatiq's default middleware's enqueue hooks (none
  of them has one) and writes each chunk in one ``MULTI``, as on the stack's broker.
- W3 does not apply: without the stack there is no deduplication and no per-key limit
  (``peers.py`` shows it as n/a and never runs it).
"""

from __future__ import annotations

import dramatiq
import peer_common as c
import redis

from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.brokers.redis_broker import RedisBroker

broker = RedisBroker(url=c.REDIS_URL, namespace=c.PREFIX)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
client = redis.Redis.from_url(c.REDIS_URL)
count = client.register_script(c.COUNT_SCRIPT)


@dramatiq.actor(broker=broker, queue_name=c.QUEUE)
def noop(n: int) -> None:
    count(keys=[c.COUNTER])


def main() -> None:
    workload, n = c.parse_args()
    if workload == "W3":
        raise SystemExit("W3 does not apply to the broker alone: no dedup or per-key limits")
    client.ping()

    def enqueue() -> None:
        enqueue_many(broker, [noop.message(i) for i in range(n)], chunk_size=c.CHUNK)

    seconds, cpu = c.timed(enqueue)
    queued = client.hlen(f"{c.PREFIX}:{c.QUEUE}.msgs")
    c.report(seconds=seconds, cpu_seconds=cpu, queued=queued, api="enqueue_many")


if __name__ == "__main__":
    main()

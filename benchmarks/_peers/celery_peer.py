"""Celery for ``benchmarks/peers.py``: the Redis broker, no result backend.

Workers: ``celery -A celery_peer worker -P threads -c 8 --without-gossip --without-mingle
--without-heartbeat -Q bench`` (twice). Every key carries the run's prefix (kombu's
``global_keyprefix`` transport option).

- W1/W2: ``noop``; enqueued with ``group(...).apply_async()`` (Celery has no bulk publish:
  a group sends its tasks one by one on one producer).
- W3: ``limited``: Celery's task ``rate_limit`` (a token bucket per worker and task type,
  not per key; set far above the rate reached); Celery has no deduplication.
"""

from __future__ import annotations

import peer_common as c
import redis
from celery import Celery, group

app = Celery("celery_peer", broker=c.REDIS_URL)
app.conf.update(
    broker_transport_options={"global_keyprefix": f"{c.PREFIX}:"},
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    task_default_queue=c.QUEUE,
)
client = redis.Redis.from_url(c.REDIS_URL)
count = client.register_script(c.COUNT_SCRIPT)


@app.task(name="noop")
def noop(n: int) -> None:
    count(keys=[c.COUNTER])


@app.task(name="limited", rate_limit=f"{c.RATE_LIMIT}/s")
def limited(n: int, key: str) -> None:
    count(keys=[c.COUNTER])


def main() -> None:
    workload, n = c.parse_args()
    with app.connection_for_write() as connection:
        connection.ensure_connection()

        def enqueue() -> None:
            if workload == "W3":
                group(limited.s(i, c.rate_key(i)) for i in range(n)).apply_async()
            else:
                group(noop.s(i) for i in range(n)).apply_async()

        seconds, cpu = c.timed(enqueue)
    queued = client.llen(f"{c.PREFIX}:{c.QUEUE}")
    c.report(seconds=seconds, cpu_seconds=cpu, queued=queued, api="group().apply_async()")


if __name__ == "__main__":
    main()

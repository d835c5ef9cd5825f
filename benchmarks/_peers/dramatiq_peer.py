"""Bare Dramatiq for ``benchmarks/peers.py``: Dramatiq's own RedisBroker, default middleware.

Workers: ``dramatiq dramatiq_peer --processes 2 --threads 8 --queues bench``.

- W1/W2: ``noop``; enqueued with ``send()`` in a loop (Dramatiq has no bulk enqueue; each
  send is one ``EVALSHA`` round trip).
- W3: ``limited``: Dramatiq's ``WindowRateLimiter`` per key (60 s window, limit never
  reached), one limiter per key; Dramatiq has no deduplication.
"""

from __future__ import annotations

import dramatiq
import peer_common as c
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

broker = RedisBroker(url=c.REDIS_URL, namespace=c.PREFIX)
dramatiq.set_broker(broker)
client = redis.Redis.from_url(c.REDIS_URL)
count = client.register_script(c.COUNT_SCRIPT)
backend = RedisBackend(client=client)
limiters: dict[str, WindowRateLimiter] = {}


def limiter(key: str) -> WindowRateLimiter:
    """The window limiter of ``key`` (made once per key and process)."""
    found = limiters.get(key)
    if found is None:
        found = limiters.setdefault(
            key,
            WindowRateLimiter(backend, f"{c.PREFIX}:rl:{key}", limit=c.RATE_LIMIT, window=60),
        )
    return found


@dramatiq.actor(queue_name=c.QUEUE)
def noop(n: int) -> None:
    count(keys=[c.COUNTER])


@dramatiq.actor(queue_name=c.QUEUE)
def limited(n: int, key: str) -> None:
    with limiter(key).acquire():  # raises RateLimitExceeded over the limit (never here)
        count(keys=[c.COUNTER])


def main() -> None:
    workload, n = c.parse_args()
    client.ping()

    def enqueue() -> None:
        if workload == "W3":
            for i in range(n):
                limited.send(i, c.rate_key(i))
        else:
            for i in range(n):
                noop.send(i)

    seconds, cpu = c.timed(enqueue)
    queued = client.hlen(f"{c.PREFIX}:{c.QUEUE}.msgs")
    c.report(seconds=seconds, cpu_seconds=cpu, queued=queued, api="send() in a loop")


if __name__ == "__main__":
    main()

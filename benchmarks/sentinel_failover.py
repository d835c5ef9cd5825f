"""Redis under Sentinel: what a failover loses of the enqueues acknowledged just before the
primary dies, at full speed (the fault suite's ``tests/faults/test_redis_sentinel.py`` runs
a paced, shortened version with a worker).

One command (needs ``redis-server`` on the PATH; starts its own primary, replica and three
Sentinels on spare ports, removed at the end)::

    .venv/bin/python benchmarks/sentinel_failover.py [--threads 4] [--seconds 3] [--runs 3]

Each run: ``--threads`` producer threads enqueue messages through gcmc-jobs' Redis broker on
the ``redis+sentinel://`` URL as fast as they can; after ``--seconds`` the primary is
SIGKILLed; the producers keep sending until the Sentinels have promoted the replica and 1 s
more. Printed per run: messages acknowledged before the kill, how many of them the promoted
replica does not have (lost: acknowledged by the old primary, not yet replicated), sends
refused (raised) during the failover, the time from the kill to the promotion, and to the
first acknowledged send on the new primary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dramatiq
import redis

from gcmc_jobs.brokers.redis_broker import RedisBroker
from gcmc_jobs.redis_keys import messages_key
from gcmc_jobs.redis_urls import redis_from_url
from tests.support.services import SentinelGroup

QUEUE = "failover_probe"


def one_run(threads: int, seconds: float) -> dict[str, float]:
    group = SentinelGroup(Path(tempfile.mkdtemp(prefix="gcmc_sentinel_bench_"))).start()
    namespace = f"gcmc_sentinel_bench_{uuid.uuid4().hex[:8]}"
    killed = threading.Event()
    stop = threading.Event()
    before: list[str] = []  # acknowledged before the kill (appended under the GIL)
    after: list[tuple[float, str]] = []
    refused = [0]

    def produce() -> None:
        client = redis_from_url(group.url, socket_timeout=2, socket_connect_timeout=2)
        broker = RedisBroker(client=client, namespace=namespace, middleware=[])  # type: ignore[no-untyped-call]
        while not stop.is_set():
            message = dramatiq.Message(
                queue_name=QUEUE, actor_name=QUEUE, args=(), kwargs={}, options={}
            )
            was_killed = killed.is_set()
            try:
                sent = broker.enqueue(message)
            except (redis.RedisError, dramatiq.errors.BrokerConnectionError):
                refused[0] += 1
                continue
            # Dramatiq stores a message under the id its enqueue gives the copy it writes.
            redis_id = sent.options["redis_message_id"]
            if was_killed:
                after.append((time.monotonic(), redis_id))
            else:
                before.append(redis_id)
        client.close()

    workers = [threading.Thread(target=produce, daemon=True) for _ in range(threads)]
    try:
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        # Sends that started before the kill and return after it count as "before".
        killed_at = time.monotonic()
        group.kill_primary()
        killed.set()
        while group.primary_port() != group.replica.port:
            time.sleep(0.02)
        promoted_s = time.monotonic() - killed_at
        time.sleep(1)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        client = group.replica.client()
        present = set()
        key = messages_key(namespace, QUEUE)
        for found in client.hscan_iter(key, count=5_000):
            present.add(found[0].decode())
        client.close()
        lost = [m for m in before if m not in present]
        first_after = min((t for t, _ in after), default=float("nan")) - killed_at
        return {
            "acknowledged_before_kill": len(before),
            "lost": len(lost),
            "refused": refused[0],
            "sent_after_kill": len(after),
            "promoted_s": promoted_s,
            "first_send_after_kill_s": first_after,
        }
    finally:
        stop.set()
        group.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for n in range(args.runs):
        figures = one_run(args.threads, args.seconds)
        print(
            f"run {n + 1}: acknowledged before the kill {figures['acknowledged_before_kill']:,}, "
            f"lost {figures['lost']:,}, refused during the failover {figures['refused']:,}, "
            f"sent after {figures['sent_after_kill']:,}; promoted after "
            f"{figures['promoted_s']:.2f} s, first send on the new primary after "
            f"{figures['first_send_after_kill_s']:.2f} s"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Outbox relay throughput next to one-by-one ``send()``, and commit-to-enqueue latency.

One command (PostgreSQL and Redis of the test suite; its own database and Redis namespace,
removed at the end)::

    .venv/bin/python benchmarks/outbox.py [--messages 5000] [--latency 500]

In the same run, on the same Redis broker (gcmc-jobs' whole middleware stack):

1. ``send()``: ``actor.send(n)`` one by one (one ``EVALSHA`` round trip each), msgs/s.
2. relay: the same number of messages committed to the outbox beforehand (100 per host
   transaction; that cost is printed too but not counted), then ``OutboxRelay.drain`` (batches
   of ``GCMC_JOBS_OUTBOX_BATCH_SIZE``: ``SELECT … FOR UPDATE SKIP LOCKED``, ``MGET`` of the
   relay keys, one ``MULTI`` of the messages and their keys, the statuses, ``DELETE``),
   msgs/s; the ratio relay / send (issue 12 target: ≥ 2).

   The two alternate in ``--rounds`` rounds of ``messages / rounds`` each (send first in
   even rounds, the relay first in odd ones), so that both meet the same load from other
   processes on a shared machine; printed: the ratio over all rounds, each round's (and its
   rates), and the
   process CPU time per message of each path.
3. latency: a relay thread running (woken by PostgreSQL ``NOTIFY`` at commit), a host
   committing one message per transaction every 5 ms; per message, the time from the
   commit's return to the relay's enqueue (an ``after_enqueue`` hook), p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq import Middleware

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs import outbox
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.middleware import OutboxRelay
from gcmc_jobs.settings import Settings

QUEUE = "bench_outbox"


class EnqueueTimes(Middleware):
    """Records when each message was enqueued (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.at[message.message_id] = time.perf_counter()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--latency", type=int, default=500, help="messages timed one by one")
    parser.add_argument("--rounds", type=int, default=5, help="send/relay rounds, alternated")
    parser.add_argument(
        "--postgres", default=os.environ.get("GCMC_JOBS_TEST_POSTGRES_URL",
                                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    )  # fmt: skip
    parser.add_argument(
        "--redis", default=os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    with bench_database(args.postgres, "outbox") as engine:
        url = engine.url.render_as_string(hide_password=False)
        namespace = f"gcmc_bench_outbox_{uuid.uuid4().hex[:10]}"
        client = redis.Redis.from_url(args.redis)
        try:
            upgrade(engine)
            settings = Settings(
                database_url=url, broker_url=args.redis, namespace=namespace, outbox_relay=False
            )
            with configured(settings, engine=engine) as runtime:
                broker = runtime.broker

                @dramatiq.actor(broker=broker, queue_name=QUEUE)
                def bench_outbox_noop(n: int) -> None:
                    pass

                (relay,) = [m for m in broker.middleware if isinstance(m, OutboxRelay)]
                n = args.messages
                bench_outbox_noop.send(-1)  # connect, load the scripts
                with engine.begin() as connection:  # the same for the relay
                    outbox.send(connection, bench_outbox_noop, -1)
                relay.drain(broker)

                send_s = relay_s = write_s = send_cpu = relay_cpu = 0.0
                ratios: list[float] = []
                rates: list[tuple[float, float]] = []
                per_round = max(1, n // args.rounds)
                for round_no, first in enumerate(range(0, n, per_round)):
                    numbers = range(first, min(first + per_round, n))
                    start = time.perf_counter()
                    for at in range(numbers.start, numbers.stop, 100):
                        with engine.begin() as connection:
                            for i in range(at, min(at + 100, numbers.stop)):
                                outbox.send(connection, bench_outbox_noop, i)
                    write_s += time.perf_counter() - start
                    took: dict[str, tuple[float, float]] = {}
                    order = ("send", "relay") if round_no % 2 == 0 else ("relay", "send")
                    for path in order:
                        start, cpu = time.perf_counter(), time.process_time()
                        if path == "send":
                            for i in numbers:
                                bench_outbox_noop.send(i)
                        else:
                            relayed = relay.drain(broker)
                            assert relayed == len(numbers), relayed
                        took[path] = (time.perf_counter() - start, time.process_time() - cpu)
                    send_s += took["send"][0]
                    relay_s += took["relay"][0]
                    send_cpu += took["send"][1]
                    relay_cpu += took["relay"][1]
                    ratios.append(took["send"][0] / took["relay"][0])
                    rates.append((len(numbers) / took["send"][0], len(numbers) / took["relay"][0]))

                times = EnqueueTimes()
                broker.add_middleware(times)
                stop = threading.Event()
                thread = threading.Thread(target=relay.run, args=(broker, stop), daemon=True)
                thread.start()
                time.sleep(0.5)  # the relay is listening
                committed: dict[str, float] = {}
                for i in range(args.latency):
                    with engine.begin() as connection:
                        message = outbox.send(connection, bench_outbox_noop, i)
                    committed[message.message_id] = time.perf_counter()
                    time.sleep(0.005)
                deadline = time.monotonic() + 30
                while len(times.at) < args.latency and time.monotonic() < deadline:
                    time.sleep(0.05)
                stop.set()
                thread.join(10)
                latencies = sorted(
                    (times.at[m] - t) * 1000 for m, t in committed.items() if m in times.at
                )

            send_rate, relay_rate = n / send_s, n / relay_s
            print(
                f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
            )
            print(f"messages: {n}, relay batch {settings.outbox_batch_size}")
            print(f"send() one by one:      {send_rate:9,.0f} msgs/s")
            print(f"relay (drain):          {relay_rate:9,.0f} msgs/s")
            print(f"ratio relay / send():   {relay_rate / send_rate:9.2f}  (target >= 2)")
            print(f"  per round:            {' '.join(f'{r:.2f}' for r in ratios)}")
            print(f"  send() per round:     {' '.join(f'{s:,.0f}' for s, _ in rates)} msgs/s")
            print(f"  relay per round:      {' '.join(f'{r:,.0f}' for _, r in rates)} msgs/s")
            print(
                f"CPU per message:        send() {send_cpu / n * 1e6:.0f} µs, "
                f"relay {relay_cpu / n * 1e6:.0f} µs"
            )
            print(f"host writes (outbox.send, 100 per transaction): {n / write_s:,.0f} msgs/s")
            if latencies:
                p50 = statistics.median(latencies)
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                print(
                    f"commit-to-enqueue latency over {len(latencies)}/{args.latency} messages: "
                    f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
                )
        finally:
            keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
            for start_at in range(0, len(keys), 500):
                client.delete(*keys[start_at : start_at + 500])
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

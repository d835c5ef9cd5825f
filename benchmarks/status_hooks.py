"""In-process cost of a worker's status records (``StatusTracking``, issue 17 item 2): its
hooks on the worker thread and the batch writes of its background thread, on real Redis.

Run: ``.venv/bin/python benchmarks/status_hooks.py [--n 20000] [--redis URL]
[--baseline DIR]``.

Builds ``N`` no-op messages as our consumer hands them out (``_FieldsProxy``) and runs, for
each, ``before_process_message``, ``after_process_message`` and ``after_ack`` of a
``StatusTracking`` on a ``RedisStatusStore`` (``batch_ms`` 20, as a worker), then flushes its
batches. Reports µs per message of the worker thread's CPU (the hooks) and of the process's
CPU (the hooks and the batch thread's packing and sending), best of three, and checks that
the last message's record reads ``succeeded``. Then, without the batch thread, the batch
writes alone of the same messages' records (500 a call, as the thread writes them): the
client's CPU and the Redis server's (``INFO cpu``: meaningful on a Redis of your own).
``--baseline DIR`` runs the same in a subprocess on the code of ``DIR`` (a checkout of an
earlier commit), alternating with this checkout, three times each.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._baseline import measure_or_alternate  # noqa: E402


def measure(n: int, redis_url: str) -> dict[str, float]:
    """µs per message, best of three: worker-thread CPU (hooks), process CPU (hooks and the
    batch thread), the batch writes' client CPU alone (batch) and Redis's CPU for them."""
    # Imported here, after main() put the checkout to measure (--root) first on sys.path.
    import dramatiq
    import redis
    from dramatiq.brokers.stub import StubBroker

    import gcmc_jobs
    from gcmc_jobs.brokers.redis_broker import _FieldsProxy
    from gcmc_jobs.middleware.status_tracking import StatusTracking
    from gcmc_jobs.middleware.stores.status import RedisStatusStore

    broker = StubBroker()

    @dramatiq.actor(broker=broker, queue_name="bench_status")
    def noop(i: int) -> None:
        pass

    client = redis.Redis.from_url(redis_url)
    namespace = f"gcmc_bench_status_{uuid.uuid4().hex[:6]}"
    best = dict.fromkeys(("hooks", "process", "batch", "redis"), float("inf"))
    try:
        for _ in range(3):
            messages = [_FieldsProxy(noop.message(i)) for i in range(n)]
            store = RedisStatusStore(client, namespace=namespace)
            tracking = StatusTracking(store, ttl_ms=600_000, batch_ms=20)
            process, thread = time.process_time(), time.thread_time()
            for message in messages:
                tracking.before_process_message(broker, message)
                tracking.after_process_message(broker, message, result=None)
                tracking.after_ack(broker, message)
            hooks = time.thread_time() - thread
            tracking.flush()
            total = time.process_time() - process
            best["hooks"] = min(best["hooks"], hooks / n * 1e6)
            best["process"] = min(best["process"], total / n * 1e6)
            last = gcmc_jobs.status(messages[-1].message_id, store=store)
            if last is None or last.state != "succeeded":
                raise RuntimeError(f"the last message's record reads {last}")

            store = RedisStatusStore(client, namespace=f"{namespace}:batch")
            tracking = StatusTracking(store, ttl_ms=600_000, batch_ms=20)
            items: list[Any] = []
            tracking._batch.put = items.append  # type: ignore[method-assign]
            for message in messages:
                tracking.before_process_message(broker, message)
                tracking.after_process_message(broker, message, result=None)
            server = _server_cpu(client)
            thread = time.thread_time()
            for start in range(0, len(items), 500):
                tracking._write_batch(items[start : start + 500])
            best["batch"] = min(best["batch"], (time.thread_time() - thread) / n * 1e6)
            best["redis"] = min(best["redis"], (_server_cpu(client) - server) / n * 1e6)
    finally:
        for key in client.scan_iter(f"{namespace}:*", count=10_000):
            client.delete(key)
    return best


def _server_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="messages (20,000)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier commit")
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)  # the code to measure
    args = parser.parse_args()
    measure_or_alternate(
        __file__,
        ["--n", str(args.n), "--redis", args.redis],
        args.root,
        args.baseline,
        lambda: measure(args.n, args.redis),
    )


if __name__ == "__main__":
    main()

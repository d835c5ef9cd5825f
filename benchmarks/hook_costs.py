"""What each middleware hook costs in a real worker: thread CPU per message, hook by hook.

Run: ``.venv/bin/python benchmarks/hook_costs.py [--actor noop|email] [--n 30000]
[--rounds 2] [--baseline DIR]``.

Preloads ``N`` messages of the whole stack (``benchmarks._worker_overhead_app``'s ``stack``
mode: the no-op actor, or the email-shaped one with a dedup key and a recipient rate limit),
then runs one ``dramatiq`` worker process with 8 threads that also loads
``benchmarks/_hook_timer.py``: every hook the broker emits is wrapped in a timer of the calling
thread's CPU time (``time.thread_time_ns``). Once the queue is drained, it prints each hook's
CPU per message, the costliest first, and the sum.

In-process micro-benchmarks (``middleware_hooks.py``, ``status_hooks.py``) time a hook in a
tight loop, where its code and data stay in the CPU's caches; in a worker, between the
consumer, eight threads and the broker's batch threads, the same hook costs two to three
times as much. This measures it there. Each timed call includes one reading of the thread's
clock (a system call here): the figure printed as ``timer`` is that cost, measured in this
process, and ``net`` subtracts it from each call.

``--baseline DIR`` (a checkout of an earlier commit) runs the same on that checkout's code
in every round, alternating, and prints both side by side (medians over the rounds). Uses
Redis (``GCMC_JOBS_TEST_REDIS_URL``, default local) under a namespace of its own, removed
at the end, and an SQLite file in a temporary directory (never opened by these actors).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._worker_overhead_app import QUEUE  # noqa: E402
from benchmarks.worker_overhead import REDIS_URL, preload, stop_and_clean  # noqa: E402


def timer_cost_us() -> float:
    """µs one reading of the thread's CPU clock costs here (best of five)."""
    clock = time.thread_time_ns
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(20_000):
            clock()
        best = min(best, (time.perf_counter() - started) / 20_000 * 1e6)
    return best


def run(root: Path, actor: str, n: int, threads: int, work: Path) -> dict[str, tuple[float, float]]:
    """Each hook's (thread CPU µs, calls) per message on the workers of ``root``."""
    namespace = f"gcmc_bench_hooks_{uuid.uuid4().hex[:8]}"
    times = work / f"{namespace}.json"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")},
        "BENCH_MODE": "stack",
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_NAMESPACE": namespace,
        "BENCH_HOOK_TIMES": str(times),
        "GCMC_JOBS_BROKER_URL": REDIS_URL,
        "GCMC_JOBS_NAMESPACE": namespace,
        "GCMC_JOBS_DATABASE_URL": f"sqlite:///{work / 'gcmc_jobs.sqlite3'}",
        "GCMC_JOBS_LOG_FORMAT": "json",
        "GCMC_JOBS_LOG_LEVEL": "INFO",
        # This checkout's timer, whatever the checkout measured (a baseline has none).
        "PYTHONPATH": os.pathsep.join([str(root), str(ROOT / "benchmarks")]),
    }
    preload("stack", actor, n, env, namespace)
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{namespace}:{QUEUE}.msgs"
    worker = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "benchmarks._worker_overhead_app",
         "_hook_timer", "--processes", "1", "--threads", str(threads),
         "--queues", QUEUE],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while client.hlen(key):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{client.hlen(key)} of {n} messages left on {root}")
            time.sleep(0.05)
        time.sleep(1.5)  # the last acknowledgements' hooks, then the timer's next write
    finally:
        stop_and_clean(worker, client, namespace)
    totals = json.loads(times.read_text())
    return {name: (ns / n / 1000, calls / n) for name, (ns, calls) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actor", choices=("noop", "email"), default="noop")
    parser.add_argument("--n", type=int, default=30_000, help="messages (30,000)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (2)")
    parser.add_argument("--baseline", type=Path, help="an earlier commit's checkout")
    args = parser.parse_args()
    checkouts = {"this": ROOT}
    if args.baseline is not None:
        checkouts = {"baseline": args.baseline.resolve(), "this": ROOT}
    timer = timer_cost_us()
    print(f"load average at start: {os.getloadavg()}; timer {timer:.2f} µs a call", flush=True)
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {label: [] for label in checkouts}
    with tempfile.TemporaryDirectory() as work:
        for round_no in range(args.rounds):
            for label, root in checkouts.items():
                hooks = run(root, args.actor, args.n, args.threads, Path(work))
                runs[label].append(hooks)
                total = sum(us for us, _ in hooks.values())
                net = sum(us - calls * timer for us, calls in hooks.values())
                print(
                    f"round {round_no + 1} {label:8s} all hooks {total:6.1f} µs/msg "
                    f"(net {net:5.1f})  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    labels = list(checkouts)

    def median(label: str, name: str, field: int) -> float:
        return statistics.median(hooks.get(name, (0.0, 0.0))[field] for hooks in runs[label])

    names = sorted(
        {name for label in labels for hooks in runs[label] for name in hooks},
        key=lambda name: -median("this", name, 0),
    )
    print(f"\nthread CPU µs a message, median of {args.rounds} round(s); net = minus the timer")
    print("".join(f"{label + ' (net)':>18s}" for label in labels) + "  calls/msg  hook")
    for name in names:
        if all(median(label, name, 0) < 0.05 for label in labels):
            continue  # once a worker, not a message (boot, shutdown)
        cells = []
        for label in labels:
            us, calls = median(label, name, 0), median(label, name, 1)
            cells.append(f"{us:7.2f} ({max(0.0, us - calls * timer):5.2f})")
        print(
            "".join(f"{cell:>18s}" for cell in cells) + f"  {median('this', name, 1):9.3f}  {name}"
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

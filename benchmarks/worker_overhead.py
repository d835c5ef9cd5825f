"""Benchmark of the middleware's cost on real workers (issue 4).

Run: ``.venv/bin/python benchmarks/worker_overhead.py [--n 20000] [--rounds 2]``.

Each scenario preloads ``N`` messages on Redis (pipelined), then starts
``dramatiq benchmarks._worker_overhead_app --processes 2 --threads 8`` and measures how fast the
workers drain the queue between 10 % and 90 % done (worker start-up is not counted):

1. ``bare``: a no-op actor on Dramatiq's RedisBroker with its default middleware;
1b. ``bare, our RedisBroker``: the same on gcmc-jobs' ``RedisBroker`` subclass (cheaper
   hook dispatch and broker commands), Dramatiq's default middleware: the stack's ratio to
   it is the cost of our middleware alone, without the broker's savings;
2. ``stack``: the same no-op actor on gcmc-jobs' whole stack (logging every state as JSON
   lines to a file, metrics, dedup/rate-limit/dead-letter middleware with nothing to do).
   Target >= 0.85x bare;
2b. ``stack, status off``: the same with ``GCMC_JOBS_STATUS_TTL_MS=0`` (no status records):
   the ratio of the two is the cost of :class:`~gcmc_jobs.middleware.StatusTracking` (two
   Redis writes per message on the worker: ``running`` and ``succeeded``);
   ``--only-status`` runs just these two and the bare run;
2c. ``stack, worker stats off``: the same with ``GCMC_JOBS_WORKER_STATS_INTERVAL_MS=0`` (no
   per-message timing, no figures written): the ratio of ``stack`` to it is the cost of the
   worker figures (``WorkerRegistry`` with ``WorkerStats``); ``--only-stats`` runs just these
   two and the bare run;
3. ``email``: an email-shaped message on the whole stack with a dedup key (unique) and a
   recipient (10,000 distinct, under the limit): the rate-limit slots of a fetched batch
   booked in one Lua call (by the first of the batch to run), the dedup keys marked done in
   batches. Target >= 0.6x bare on our RedisBroker; ``--only-email`` runs just this, the bare
   run and the bare run on our RedisBroker; ``--baseline DIR`` adds, in every round, the same
   message on the workers of a checkout of an earlier commit (before/after in one run;
   with ``--only-noop``, the no-op on that checkout's bare RedisBroker and whole stack);
4. one hot recipient shared by all 16 worker threads: Dramatiq's ``WindowRateLimiter``
   (WATCH/MULTI loop) vs our ``RateLimits`` (one Lua call), each alone on bare Dramatiq.

It also reports the worker processes' CPU time per message (from ``/proc``, over the same
stretch), which other load on the machine disturbs far less than wall-clock throughput.
Rounds alternate the scenarios; each ratio is taken within a round (against the bare run just
before it) and the median over rounds is reported: the machine is shared and busy.
Uses a PostgreSQL database ``gcmc_bench_mw_<random>`` and Redis namespaces of its own, all
removed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import make_url, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._worker_overhead_app import QUEUE, build  # noqa: E402
from gcmc_jobs.brokers.bulk import enqueue_many  # noqa: E402
from gcmc_jobs.db.engine import make_engine  # noqa: E402
from gcmc_jobs.db.migrate import upgrade  # noqa: E402

PG_SERVER = os.environ.get(
    "GCMC_JOBS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TAG = uuid.uuid4().hex[:8]


def _messages(mode: str, actor: str, n: int, actors: dict[str, Any]) -> list[Any]:
    if actor == "email":
        return [
            actors["email"].message(kind="notice", to=f"User{i % 10_000}@Example.com", n=i)
            for i in range(n)
        ]
    if mode == "ours_hot":
        return [
            actors["noop"].message_with_options(args=(i,), rate_limit_key="hot") for i in range(n)
        ]
    return [actors[actor].message(i) for i in range(n)]


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def preload(mode: str, actor: str, n: int, env: dict[str, str], namespace: str) -> None:
    """Enqueue ``n`` messages of ``actor`` on the broker of ``mode`` in ``namespace``, built
    under the workers' environment ``env`` (``GCMC_JOBS_*``), which is then restored."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        broker, actors = build(mode, url=REDIS_URL, namespace=namespace)
        enqueue_many(broker, _messages(mode, actor, n, actors))
        broker.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stop_and_clean(process: subprocess.Popen[bytes], client: redis.Redis, namespace: str) -> None:
    """Stop the ``dramatiq`` command ``process`` (SIGTERM, then SIGKILL after 60 s), delete
    every key of ``namespace`` and close ``client``."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


def run(
    mode: str, actor: str, n: int, database_url: str, log_dir: Path, root: Path = ROOT
) -> tuple[float, float]:
    """Messages/s of ``actor`` under ``mode`` between 10 % and 90 % of ``n`` processed, and
    the worker processes' CPU time per message (µs) over the same stretch; the workers run
    the code of ``root`` (a checkout of another commit for ``--baseline``)."""
    namespace = f"gcmc_bench_mw_{TAG}_{uuid.uuid4().hex[:6]}"
    stack = mode in ("stack", "stack_quiet", "stack_nostatus", "stack_nostats")
    env = {
        **os.environ,
        "BENCH_MODE": "stack" if stack else mode,
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_NAMESPACE": namespace,
        "GCMC_JOBS_BROKER_URL": REDIS_URL,
        "GCMC_JOBS_NAMESPACE": namespace,
        "GCMC_JOBS_DATABASE_URL": database_url,
        "GCMC_JOBS_LOG_FORMAT": "json",
        "GCMC_JOBS_LOG_LEVEL": "WARNING" if mode == "stack_quiet" else "INFO",
        # Status records kept (the default, 7 days) or off.
        "GCMC_JOBS_STATUS_TTL_MS": "0" if mode == "stack_nostatus" else "604800000",
        # Worker figures (busy threads, processing times, memory) every 5 s, or none.
        "GCMC_JOBS_WORKER_STATS_INTERVAL_MS": "0" if mode == "stack_nostats" else "5000",
    }
    mode = "stack" if stack else mode
    env.pop("GCMC_JOBS_REDIS_URL", None)
    preload(mode, actor, n, env, namespace)
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{namespace}:{QUEUE}.msgs"
    assert client.hlen(key) == n, f"preloaded {client.hlen(key)} of {n}"
    log = log_dir / f"{mode}-{actor}-{namespace}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "benchmarks._worker_overhead_app",
             "--processes", "2", "--threads", "8", "--queues", QUEUE],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        t10 = t90 = None
        cpu10 = cpu90 = 0.0
        deadline = time.monotonic() + 600
        while True:
            remaining = client.hlen(key)
            now = time.monotonic()
            if t10 is None and remaining <= 0.9 * n:
                t10, cpu10 = now, _tree_cpu(process.pid)
            if t90 is None and remaining <= 0.1 * n:
                t90, cpu90 = now, _tree_cpu(process.pid)
            if remaining == 0:
                break
            if now > deadline:
                raise TimeoutError(f"{mode}/{actor}: {remaining} left after 600 s")
            time.sleep(0.005)
    finally:
        stop_and_clean(process, client, namespace)
    assert t10 is not None
    assert t90 is not None
    return 0.8 * n / (t90 - t10), (cpu90 - cpu10) / (0.8 * n) * 1e6


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _stats_hooks_cost() -> tuple[float, float]:
    """CPU of ``WorkerRegistry``'s two per-message hooks with ``WorkerStats`` (µs per
    message, best of 5 runs of 100,000), and of one snapshot of a full ring (ms): what the
    worker figures add to each message, apart from the machine's noise."""
    import timeit

    from gcmc_jobs.middleware import WorkerRegistry, WorkerStats

    stats = WorkerStats()
    registry = WorkerRegistry(stats)

    def one() -> None:
        registry.before_process_message(None, None)
        registry.after_process_message(None, None, result=None, exception=None)

    per_message = min(timeit.repeat(one, number=100_000, repeat=5)) / 100_000 * 1e6
    snapshot = min(timeit.repeat(stats.snapshot, number=50, repeat=5)) / 50 * 1e3
    return per_message, snapshot


def main() -> None:
    import logging

    import structlog

    # The driver only enqueues: keep its own events (``enqueued``…) out of the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="Messages per scenario.")
    parser.add_argument("--hot-n", type=int, default=1_500, help="Messages, hot-key scenarios.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds (median).")
    parser.add_argument(
        "--only-status",
        action="store_true",
        help="Only the bare run and the stack with status recording on and off.",
    )
    parser.add_argument(
        "--only-email",
        action="store_true",
        help="Only the bare runs (Dramatiq's broker and ours) and the email-shaped message.",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="A checkout of an earlier commit (e.g. `git archive main | tar -x -C DIR`): its"
        " workers also run the email-shaped message in every round, next to ours (with"
        " --only-noop: the no-op on its bare RedisBroker and whole stack).",
    )
    parser.add_argument(
        "--only-stats",
        action="store_true",
        help="Only the bare run and the stack with the worker figures on and off.",
    )
    parser.add_argument(
        "--only-noop",
        action="store_true",
        help="Only the no-op scenarios: bare, bare on our RedisBroker, the stack (issue 17's"
        " no-op target) and the stack at log level WARNING.",
    )
    args = parser.parse_args()

    admin = make_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    name = f"gcmc_bench_mw_{TAG}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()

    scenarios: dict[str, tuple[str, str, int]] = {
        "bare no-op": ("bare", "noop", args.n),
        "bare no-op, our RedisBroker": ("bare_ours", "noop", args.n),
        "stack no-op": ("stack", "noop", args.n),
        "stack no-op, status off": ("stack_nostatus", "noop", args.n),
        "stack no-op, worker stats off": ("stack_nostats", "noop", args.n),
        "stack no-op, log level WARNING": ("stack_quiet", "noop", args.n),
        "stack email (dedup + rate limit)": ("stack", "email", args.n),
        "hot key: Dramatiq WindowRateLimiter": ("window", "limited", args.hot_n),
        "hot key: our RateLimits": ("ours_hot", "noop", args.hot_n),
    }
    if args.only_status:
        kept = ("bare no-op", "stack no-op", "stack no-op, status off")
        scenarios = {label: scenarios[label] for label in kept}
    elif args.only_email:
        kept = ("bare no-op", "bare no-op, our RedisBroker", "stack email (dedup + rate limit)")
        scenarios = {label: scenarios[label] for label in kept}
    elif args.only_stats:
        kept = ("bare no-op", "stack no-op", "stack no-op, worker stats off")
        scenarios = {label: scenarios[label] for label in kept}
    elif args.only_noop:
        kept = (
            "bare no-op",
            "bare no-op, our RedisBroker",
            "stack no-op",
            "stack no-op, log level WARNING",
        )
        scenarios = {label: scenarios[label] for label in kept}
    roots = dict.fromkeys(scenarios, ROOT)
    if args.baseline is not None:
        # With --only-noop the baseline runs the no-op scenarios of our broker instead.
        compared = (
            {"bare no-op, our RedisBroker, baseline checkout": ("bare_ours", "noop", args.n),
             "stack no-op, baseline checkout": ("stack", "noop", args.n)}
            if args.only_noop
            else {"stack email, baseline checkout": ("stack", "email", args.n)}
        )  # fmt: skip
        for label, scenario in compared.items():
            scenarios[label] = scenario
            roots[label] = args.baseline.resolve()
    results: dict[str, list[float]] = {label: [] for label in scenarios}
    cpu: dict[str, list[float]] = {label: [] for label in scenarios}
    try:
        with tempfile.TemporaryDirectory() as logs:
            for round_no in range(args.rounds):
                for label, (mode, actor, n) in scenarios.items():
                    rate, cpu_us = run(mode, actor, n, database_url, Path(logs), roots[label])
                    results[label].append(rate)
                    cpu[label].append(cpu_us)
                    print(
                        f"round {round_no + 1}: {label:40s} {rate:8.0f} msg/s"
                        f" {cpu_us:7.0f} us CPU/msg (workers)  load {_load()}",
                        flush=True,
                    )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def ratios(label: str, base: str) -> list[float]:
        return [a / b for a, b in zip(results[label], results[base], strict=True)]

    def on_off(title: str, off: str, what: str) -> None:
        on = "stack no-op"
        if off not in results:
            return
        print(f"\n{title}, per round, then the median:")
        for label in (on, off):
            wall = statistics.median(1e6 / r for r in results[label])
            print(
                f"  {label:40s} {wall:7.0f} µs/msg wall (16 threads)"
                f" {statistics.median(cpu[label]):7.0f} µs CPU/msg"
            )
        shown = ", ".join(f"{r:.2f}" for r in ratios(on, off))
        print(f"  throughput on/off {statistics.median(ratios(on, off)):5.2f} x  [{shown}]")
        extra = [a - b for a, b in zip(cpu[on], cpu[off], strict=True)]
        print(f"  worker CPU added by {what}: {statistics.median(extra):6.0f} µs/msg")

    on_off("status recording (StatusTracking)", "stack no-op, status off", "status records")
    on_off("worker figures (WorkerStats)", "stack no-op, worker stats off", "worker figures")
    if "stack no-op, worker stats off" in results:
        per_message, snapshot = _stats_hooks_cost()
        print(
            f"  in process, the two hooks alone: {per_message:5.2f} µs/msg (best of 5 x 100,000);"
            f" one report of a full ring: {snapshot:5.2f} ms"
        )
    if args.only_status or args.only_stats:
        return

    bare = statistics.median(results["bare no-op"])
    print("\nmedian msg/s (2 processes x 8 threads; shared, busy 2-core machine):")
    for label in scenarios:
        print(f"  {label:40s} {statistics.median(results[label]):8.0f}")
    print("\nratios, taken per round (a scenario vs bare run just before it), then the median:")
    for label, target in (
        ("stack no-op", "Dramatiq's own broker underneath"),
        ("stack no-op, log level WARNING", "logging's share"),
        ("stack email (dedup + rate limit)", "Dramatiq's own broker underneath"),
        ("hot key: Dramatiq WindowRateLimiter", "collapses"),
        ("hot key: our RateLimits", "must not collapse"),
    ):
        if label not in results:
            continue
        per_round = ratios(label, "bare no-op")
        shown = ", ".join(f"{r:.2f}" for r in per_round)
        print(f"  {label:40s} {statistics.median(per_round):5.2f} x bare  [{shown}]  ({target})")
    print("\nworker CPU per message (median, µs; bare/scenario = throughput ratio when CPU-bound):")
    bare_cpu = statistics.median(cpu["bare no-op"])
    for label in scenarios:
        mine = statistics.median(cpu[label])
        print(f"  {label:40s} {mine:7.0f} µs   bare/this = {bare_cpu / mine:5.2f}")
    ours = "bare no-op, our RedisBroker"
    print("\nthe middleware alone: ratios to bare on our RedisBroker (per round, then the median;")
    print("throughput, and worker CPU per message: ours/this):")
    for label, target in (
        ("stack no-op", "target >= 0.80"),
        ("stack no-op, log level WARNING", "logging's share"),
        ("stack email (dedup + rate limit)", "target >= 0.60"),
        ("stack email, baseline checkout", "the --baseline checkout"),
        ("bare no-op, our RedisBroker, baseline checkout", "the --baseline checkout"),
        ("stack no-op, baseline checkout", "the --baseline checkout"),
    ):
        if label not in results:
            continue
        per_round = ratios(label, ours)
        shown = ", ".join(f"{r:.2f}" for r in per_round)
        by_cpu = [b / a for a, b in zip(cpu[label], cpu[ours], strict=True)]
        shown_cpu = ", ".join(f"{r:.2f}" for r in by_cpu)
        print(
            f"  {label:40s} {statistics.median(per_round):5.2f} x [{shown}];"
            f" CPU {statistics.median(by_cpu):5.2f} x [{shown_cpu}]  ({target})"
        )
    if "hot key: our RateLimits" in results:
        hot = ratios("hot key: our RateLimits", "hot key: Dramatiq WindowRateLimiter")
        print(f"  hot key: ours / WindowRateLimiter       {statistics.median(hot):5.1f} x")
    print(f"  (bare median {bare:.0f} msg/s)")
    print(f"load average at the end (1, 5, 15 min): {_load()}")


if __name__ == "__main__":
    main()

"""Instructions a no-op message costs the whole stack's worker hooks: a count that the
machine's load barely moves (``valgrind --tool=callgrind``; ~1 % between runs, as the status
and log writer threads batch on a timer), for changes too small for the timed benchmarks to
tell apart on a busy machine.

Run: ``.venv/bin/python benchmarks/hook_instructions.py [--n 1000] [--baseline DIR]``.

Builds the stack as a worker does (``configure`` from ``GCMC_JOBS_*``: Redis stores under a
namespace of its own, JSON log lines to ``/dev/null``, status records batched), then runs
``N`` no-op messages through what a worker thread emits for each: ``process_message``
before and after (the actor called between) and ``ack`` before and after. Counted under
callgrind twice, with ``N`` messages and with none; the difference over ``N`` is the
instructions a message (every thread of the process: the status and log writers' included;
building the ``N`` messages too, the same for every checkout). ``--baseline DIR`` (a
checkout of an earlier commit) counts that checkout's code the same way and prints the
change. About a minute a count; needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def run_messages(n: int) -> None:
    """The measured process (``--inner``): ``n`` no-op messages through the stack's hooks."""
    # Imported here, in the measured process only: it runs with PYTHONPATH naming the
    # checkout being counted (this one or --baseline's), and the driver loads neither.
    import dramatiq
    import redis

    from gcmc_jobs.bootstrap import configure
    from gcmc_jobs.brokers.redis_broker import _FieldsProxy
    from gcmc_jobs.logging import configure_logging
    from gcmc_jobs.settings import Settings

    settings = Settings()
    sink = open(os.devnull, "w")  # noqa: SIM115 (kept open for the log writer thread)
    configure_logging(settings, stream=sink, buffer_ms=100)
    broker = configure(settings, set_global=False).broker

    @dramatiq.actor(broker=broker, queue_name="bench_instructions")
    def noop(i: int) -> None:
        pass

    def process(message: object) -> None:
        broker.emit_before("process_message", message)
        noop(*message.args)  # type: ignore[attr-defined]
        broker.emit_after("process_message", message, result=None)
        broker.emit_before("ack", message)
        broker.emit_after("ack", message)

    process(_FieldsProxy(noop.message(-1)))  # the first message makes templates and states
    for i in range(n):
        process(_FieldsProxy(noop.message(i)))
    time.sleep(0.3)  # the status batch written
    broker.close()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def count(root: Path, n: int, work: Path) -> int:
    """Instructions callgrind counts for ``n`` messages on the code of ``root``."""
    out = work / f"callgrind.{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")},
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": str(root),
        "GCMC_JOBS_BROKER_URL": REDIS_URL,
        "GCMC_JOBS_NAMESPACE": f"gcmc_bench_instructions_{uuid.uuid4().hex[:8]}",
        "GCMC_JOBS_DATABASE_URL": f"sqlite:///{work / 'gcmc_jobs.sqlite3'}",
        "GCMC_JOBS_LOG_FORMAT": "json",
        "GCMC_JOBS_LOG_LEVEL": "INFO",
    }
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
         str(Path(__file__).resolve()), "--inner", str(n)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind failed on {root} ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1))


def per_message(root: Path, n: int, work: Path) -> float:
    """Instructions a message on the code of ``root``: (count of ``n`` minus count of 0) / ``n``."""
    return (count(root, n, work) - count(root, 0, work)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000, help="messages (1,000)")
    parser.add_argument("--baseline", type=Path, help="an earlier commit's checkout")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        run_messages(args.inner)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    with tempfile.TemporaryDirectory() as work:
        this = per_message(ROOT, args.n, Path(work))
        print(f"this checkout: {this:,.0f} instructions a message", flush=True)
        if args.baseline is not None:
            before = per_message(args.baseline.resolve(), args.n, Path(work))
            print(f"baseline:      {before:,.0f} instructions a message")
            print(f"change:        {(this - before) / before:+.1%}")


if __name__ == "__main__":
    main()

"""Start-up time of gcmc-jobs next to a bare ``import dramatiq``, in one run (issue 17, item 3).

    .venv/bin/python benchmarks/startup.py [--runs 7]

Runs each of these ``--runs`` times, interleaved, in fresh processes of this interpreter:
``python -c "import dramatiq"``, ``python -c "import gcmc_jobs"``, ``gcmc-jobs --help`` and
``gcmc-jobs queues`` (against the local Redis, 127.0.0.1:6379, on a namespace of its own, so
it reads empty queues), and prints the median wall time of each and its difference from the
bare Dramatiq import. Target: ``--help`` and ``queues`` within 0.3 s of ``import dramatiq``.
Before issue 17, ``gcmc-jobs --help`` took 2.3-2.9 s on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

CLI = "from gcmc_jobs.cli import main; import sys; sys.argv[0] = 'gcmc-jobs'; main()"

CASES: dict[str, list[str]] = {
    "import dramatiq": ["-c", "import dramatiq"],
    "import gcmc_jobs": ["-c", "import gcmc_jobs"],
    "gcmc-jobs --help": ["-c", CLI, "--help"],
    "gcmc-jobs queues": ["-c", CLI, "queues"],
}


def _run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{args!r} failed ({completed.returncode}): {completed.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Runs of each command (median).")
    options = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMC_JOBS_")}
    env.update(
        GCMC_JOBS_BROKER_URL="redis://127.0.0.1:6379/0",
        GCMC_JOBS_REDIS_URL="redis://127.0.0.1:6379/0",
        GCMC_JOBS_NAMESPACE=f"bench-startup-{uuid.uuid4().hex[:8]}",
    )
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(options.runs):
        for name, args in CASES.items():
            times[name].append(_run(args, env))
    base = statistics.median(times["import dramatiq"])
    print(f"median of {options.runs} runs each (wall time); load: {os.getloadavg()}")
    for name, values in times.items():
        median = statistics.median(values)
        extra = "" if name == "import dramatiq" else f"   +{median - base:6.3f} s vs dramatiq"
        print(f"  {name:<20} {median:6.3f} s{extra}")
    print("before issue 17: gcmc-jobs --help 2.3-2.9 s; target: --help, queues within +0.3 s")


if __name__ == "__main__":
    main()

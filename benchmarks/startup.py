"""Start-up time of gcmc-jobs next to a bare ``import dramatiq``, in one run (issue 17, item 3).

    .venv/bin/python benchmarks/startup.py [--runs 7]

Runs each of these ``--runs`` times, interleaved, in fresh processes of this interpreter:
``python -c "import dramatiq"``, ``python -c "import gcmc_jobs"``, ``gcmc-jobs --help`` and
``gcmc-jobs queues`` (against the local Redis, 127.0.0.1:6379, on a namespace of its own, so
it reads empty queues), and prints the median wall time of each and its difference from the
bare Dramatiq import, and the same for CPU time (user + system of the process): on a machine
other processes load, CPU time moves less than wall time. Target: ``--help`` and ``queues``
within 0.3 s of ``import dramatiq``.

Every process runs with its bytecode cached, as an installed package has it (pip compiles at
install): ``PYTHONDONTWRITEBYTECODE`` is dropped, the cache goes to a temporary directory
(``PYTHONPYCACHEPREFIX``, never the source tree), and one untimed round fills it. Without
that, with ``PYTHONDONTWRITEBYTECODE=1`` set, each run compiled gcmc-jobs' own modules from
source again (~15 ms of CPU of ``--help`` here).
Before issue 17, ``gcmc-jobs --help`` took 2.3-2.9 s on this machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

CLI = "from gcmc_jobs.cli import main; import sys; sys.argv[0] = 'gcmc-jobs'; main()"

CASES: dict[str, list[str]] = {
    "import dramatiq": ["-c", "import dramatiq"],
    "import gcmc_jobs": ["-c", "import gcmc_jobs"],
    "gcmc-jobs --help": ["-c", CLI, "--help"],
    "gcmc-jobs queues": ["-c", CLI, "queues"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run, seconds."""
    cpu = _children_cpu()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{args!r} failed ({completed.returncode}): {completed.stderr[-500:]}")
    return elapsed, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Runs of each command (median).")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gcmc-startup-pycache-") as pycache:
        _measure(options.runs, pycache)


def _measure(runs: int, pycache: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GCMC_JOBS_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        PYTHONPYCACHEPREFIX=pycache,
        GCMC_JOBS_BROKER_URL="redis://127.0.0.1:6379/0",
        GCMC_JOBS_REDIS_URL="redis://127.0.0.1:6379/0",
        GCMC_JOBS_NAMESPACE=f"bench-startup-{uuid.uuid4().hex[:8]}",
    )
    for args in CASES.values():  # untimed: writes every module's bytecode once
        _run(args, env)
    walls: dict[str, list[float]] = {name: [] for name in CASES}
    cpus: dict[str, list[float]] = {name: [] for name in CASES}
    load = os.getloadavg()
    for _ in range(runs):
        for name, args in CASES.items():
            wall, cpu = _run(args, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base = statistics.median(walls["import dramatiq"])
    cpu_base = statistics.median(cpus["import dramatiq"])
    print(f"median of {runs} runs each; load before: {load}, after: {os.getloadavg()}")
    print(f"  {'':<20} {'wall':>8} {'vs dramatiq':>12}   {'cpu':>8} {'vs dramatiq':>12}")
    for name in CASES:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        extra_wall, extra_cpu = wall - base, cpu - cpu_base
        print(
            f"  {name:<20} {wall:6.3f} s {extra_wall:+10.3f} s   {cpu:6.3f} s {extra_cpu:+10.3f} s"
        )
    print("before issue 17: gcmc-jobs --help 2.3-2.9 s; target: --help, queues within +0.3 s")


if __name__ == "__main__":
    main()

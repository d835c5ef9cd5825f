"""gcmc-jobs against its peers: the same three workloads on the same Redis (issue 17).

Run: ``.venv/bin/python benchmarks/peers.py [--quick] [--rounds 2] [--systems a,b]``
``[--workloads W1,W3] [--n N]``
(``pip install -e '.[bench]'`` first if the virtualenv was made without the dev extra).

One command sets everything up and runs it. Each peer gets an environment of its own under
``benchmarks/.peers/`` (gitignored), made on the first run and reused after: a virtualenv
per Python peer (pinned versions, from PyPI) and an ``npm install`` of BullMQ and ioredis
(only when ``node`` and ``npm`` are on the machine). A peer whose environment cannot be made
(no Node, PyPI or npm unreachable) is reported as skipped, with the reason; the others run.
gcmc-jobs itself runs from the project's virtualenv. The peers' apps are in
``benchmarks/_peers/``; the peers are never dependencies of the package.

Systems, each with 2 worker processes of 8 threads (or concurrency 8) on Redis
127.0.0.1:6379: gcmc-jobs (the whole stack through its own ``RedisBroker``, workers as
``dramatiq gcmc_jobs.worker`` loads them), gcmc-jobs' broker alone (key ``gcmc-broker``:
the same ``RedisBroker`` with Dramatiq's default middleware and none of gcmc-jobs'
middleware, the same actor, enqueued with the same ``enqueue_many``), bare Dramatiq (its
RedisBroker and default middleware), BullMQ (Node), Celery (Redis broker, thread pool), arq
(``max_jobs=8``) and RQ (``rq worker-pool -n 8 -w rq.SimpleWorker``: processes, RQ has no
threads; RQ's default worker class forks a process per job, ~20 jobs/s a worker here). No
system keeps job results.

The broker alone is the ceiling of any work on gcmc-jobs' middleware: what gcmc-jobs would
do if its whole middleware stack cost nothing (Dramatiq's worker threads, the broker's
consumer, the job's own counting call remain). It runs from the project's virtualenv, like
gcmc-jobs. W3 does not apply to it (no dedup, no per-key limit): it is never run there, and
the tables show it as n/a. With BullMQ in the run, issue 17's target lines (W1, W2) put the
broker alone's ratio to BullMQ, taken in the same rounds, next to gcmc-jobs'.

Workloads:

- W1: N no-op jobs (10,000), preloaded, then processed: jobs per second, worker CPU per
  job, Redis CPU per job;
- W2: N jobs (50,000) enqueued with each system's bulk API (a loop where it has none; the
  table says which), timed inside the enqueuing process (building the jobs and sending
  them, after its connection is open): jobs per second, that process's CPU per job, and
  Redis CPU per job over the whole enqueue command;
- W3: N jobs (10,000), each with a deduplication key (all distinct) and a per-key rate
  limit over 1,000 keys, the limit far above what a key receives: the mechanisms' cost
  only. Each system does what it has; the table says what (see ``_peers/*``).

Every job function ends with one Lua call that ``INCR``\\ s a counter: the driver counts
finished jobs by that, not by any system's bookkeeping. A processing run is timed between
10 % and 90 % of N counted (worker start-up and the tail are not timed); worker CPU is the
user + system time of the worker processes and all their descendants (``psutil``) over that
stretch, Redis CPU the change of ``used_cpu_user + used_cpu_sys`` (``INFO cpu``) over it: the
Redis is shared, so other clients' work lands there too. A run that does not count N within
a generous deadline, or stalls, or whose enqueue step did not queue N, is FAILED, not timed.

Every system and round uses a fresh key prefix; only keys containing it are deleted (never
``FLUSHALL``). Rounds alternate the order of the systems; each ratio is taken against
gcmc-jobs in the same round, then the median over rounds is printed, with the machine's
load average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

try:
    import psutil
except ImportError:  # pragma: no cover - a message instead of a traceback
    sys.exit("benchmarks/peers.py needs psutil: .venv/bin/pip install -e '.[bench]'")

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "benchmarks" / "_peers"
PEERS = ROOT / "benchmarks" / ".peers"
LOGS = PEERS / "logs"
REDIS_URL = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TAG = uuid.uuid4().hex[:8]
QUEUE = "bench"
RATE_LIMIT = 1_000_000  # W3's per-key limit: far above the 10-100 jobs a key receives
KEYS = 1_000
CHUNK = 1_000  # jobs per call of a bulk API that takes a list
WORKLOADS = ("W1", "W2", "W3")
FULL_N = {"W1": 10_000, "W2": 50_000, "W3": 10_000}
QUICK_N = 1_000
STALL_S = 60.0  # a processing run whose counter does not move for this long has FAILED


@dataclass(frozen=True)
class System:
    """One system under test: where its environment comes from and how it runs."""

    key: str
    name: str
    #: pip requirements of its virtualenv, or npm ``name@version``\\ s for BullMQ; empty
    #: for gcmc-jobs and its broker alone (the project's own virtualenv).
    requirements: tuple[str, ...]
    #: distributions whose versions the table names.
    shows: tuple[str, ...]
    #: what it does in W3.
    w3: str
    app: str
    #: the workloads that do not apply to it, with why: never run, shown as n/a.
    not_applicable: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def node(self) -> bool:
        return self.app.endswith(".cjs")

    @property
    def checkout(self) -> bool:
        """Whether it runs gcmc-jobs from this checkout, in the project's virtualenv."""
        return self.key in ("gcmc-jobs", "gcmc-broker")

    def applies(self, workload: str) -> bool:
        """Whether ``workload`` is run on it (else its table shows why not)."""
        return workload not in self.not_applicable


SYSTEMS: dict[str, System] = {
    system.key: system
    for system in (
        System(
            "gcmc-jobs",
            "gcmc-jobs",
            (),
            ("gcmc-jobs", "dramatiq"),
            "dedup_key (held 24 h after the job) + rate_limit_key per key",
            "gcmc_peer.py",
        ),
        System(
            "gcmc-broker",
            "gcmc-jobs broker alone",
            (),
            ("gcmc-jobs", "dramatiq"),
            "",
            "gcmc_broker_peer.py",
            {"W3": "no dedup or per-key limits"},
        ),
        System(
            "bullmq",
            "BullMQ",
            ("bullmq@6.7.0", "ioredis@5.11.1"),
            ("bullmq", "ioredis"),
            "jobId dedup (while the job exists; removed on completion) + the global limiter; "
            "per-key limits are BullMQ Pro only",
            "bullmq_peer.cjs",
        ),
        System(
            "celery",
            "Celery",
            ("celery[redis]==5.7.0",),
            ("celery", "kombu", "redis"),
            "task rate_limit (a token bucket per worker and task, not per key); no dedup",
            "celery_peer.py",
        ),
        System(
            "arq",
            "arq",
            ("arq==0.28.0",),
            ("arq", "redis"),
            "_job_id dedup (while queued or running); no rate limits",
            "arq_peer.py",
        ),
        System(
            "rq",
            "RQ",
            ("rq==3.0.0",),
            ("rq", "redis"),
            "RateLimit per key (a concurrency cap); no dedup (unique=True is refused with it)",
            "rq_peer.py",
        ),
        System(
            "dramatiq",
            "bare Dramatiq",
            ("dramatiq[redis]==2.2.1",),
            ("dramatiq", "redis"),
            "WindowRateLimiter per key (60 s window); no dedup",
            "dramatiq_peer.py",
        ),
    )
}


#: The width of the systems' names in the printed lines and tables.
WIDTH = max(15, *(len(system.name) for system in SYSTEMS.values()))


@dataclass
class Environment:
    """A ready environment: the interpreter (or Node folder) and the versions it holds."""

    system: System
    python: str = ""
    bin: Path | None = None
    node_dir: Path | None = None
    versions: str = ""


@dataclass
class Result:
    """One system, workload and round."""

    system: str
    workload: str
    round: int
    rate: float | None = None  # jobs per second (processed, or enqueued for W2)
    worker_us: float | None = None  # worker CPU per job (W2: the enqueuing process's)
    redis_us: float | None = None  # Redis CPU per job
    failed: str | None = None
    api: str = ""
    notes: list[str] = field(default_factory=list)


# -- Pure helpers (tested in tests/test_benchmark_peers.py) ---------------------------------


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratios(mine: Sequence[float | None], base: Sequence[float | None]) -> list[float]:
    """Round-by-round ratios ``mine / base``, skipping rounds where either is missing."""
    return [m / b for m, b in zip(mine, base, strict=True) if m is not None and b]


def window_marks(n: int) -> tuple[int, int]:
    """The counts between which a processing run is timed: 10 % and 90 % of ``n``."""
    return max(1, n // 10), max(2, n - n // 10)


def deadline_s(n: int) -> float:
    """How long a processing run of ``n`` jobs may take before it is FAILED (generous:
    30 jobs/s would make it)."""
    return 120.0 + n / 30


def round_order(keys: Sequence[str], round_no: int) -> list[str]:
    """The order of the systems in round ``round_no`` (0-based): reversed every other one."""
    return list(keys) if round_no % 2 == 0 else list(reversed(keys))


def round_plan(order: Sequence[str], workloads: Sequence[str]) -> list[tuple[str, str, bool]]:
    """A round's steps, workload by workload in the systems' ``order``: ``(workload, key,
    run)``; ``run`` is False where the workload does not apply to the system (never run)."""
    return [(w, key, SYSTEMS[key].applies(w)) for w in workloads for key in order]


def fmt_number(value: float | None, unit: str = "") -> str:
    """``1,234`` (or ``-`` for a missing value), with an optional unit."""
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}"


def fmt_ratio(value: float | None) -> str:
    """``1.23x`` (or ``-``)."""
    return "-" if value is None else f"{value:.2f}x"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (``|`` cells, a ``---`` separator row)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- Environments -------------------------------------------------------------------------


def _run(command: Sequence[str], *, cwd: Path | None = None, timeout: float = 900) -> str:
    """Run a setup command; its combined output, or CalledProcessError with it."""
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, command, output=done.stdout, stderr=done.stderr
        )
    return done.stdout


def _failure(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        text = ((exc.stderr or "") + (exc.output or "")).strip().splitlines()
        return f"{Path(str(exc.cmd[0])).name} failed: " + " / ".join(text[-3:])[-300:]
    return repr(exc)[:300]


def prepare(system: System) -> Environment | str:
    """The system's environment, made (or reused) under ``benchmarks/.peers/``; a str
    saying why when it cannot be made."""
    env = Environment(system)
    if system.checkout:
        env.python = sys.executable
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        env.versions = f"{version('gcmc-jobs')} @ {commit or '?'}, dramatiq {version('dramatiq')}"
        return env
    folder = PEERS / system.key
    marker = folder / "bench-requirements.txt"
    wanted = "\n".join(system.requirements) + "\n"
    try:
        if system.node:
            node, npm = shutil.which("node"), shutil.which("npm")
            if node is None or npm is None:
                return "node and npm are not on this machine"
            env.node_dir = folder
            if not marker.exists() or marker.read_text() != wanted:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                (folder / "package.json").write_text(
                    json.dumps({"name": "bench-peers-bullmq", "private": True}) + "\n"
                )
                print(f"  setting up {system.name}: npm install {' '.join(system.requirements)}")
                _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                      "--save-exact", *system.requirements], cwd=folder)  # fmt: skip
                marker.write_text(wanted)
            node_version = _run([node, "--version"]).strip()
            installed = []
            for name in system.shows:
                package = json.loads((folder / "node_modules" / name / "package.json").read_text())
                installed.append(f"{name} {package['version']}")
            env.versions = ", ".join(installed) + f", node {node_version}"
            return env
        env.bin = folder / "bin"
        env.python = str(env.bin / "python")
        if not marker.exists() or marker.read_text() != wanted:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"  setting up {system.name}: a virtualenv with {' '.join(system.requirements)}")
            _run([sys.executable, "-m", "venv", str(folder)])
            _run([env.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  *system.requirements])  # fmt: skip
            marker.write_text(wanted)
        script = "import sys, importlib.metadata as m; print(', '.join(f'{d} {m.version(d)}' for d in sys.argv[1:]))"  # noqa: E501
        env.versions = _run([env.python, "-c", script, *system.shows]).strip()
        return env
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return _failure(exc)


# -- Runs ---------------------------------------------------------------------------------


def _environ(env: Environment, prefix: str, workload: str, run_dir: Path) -> dict[str, str]:
    values = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])),
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_PREFIX": prefix,
        "BENCH_QUEUE": QUEUE,
        "BENCH_COUNTER": f"{prefix}:done",
        "BENCH_WORKLOAD": workload,
        "BENCH_RATE_LIMIT": str(RATE_LIMIT),
        "BENCH_KEYS": str(KEYS),
        "BENCH_CHUNK": str(CHUNK),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if env.node_dir is not None:
        values["BENCH_NODE_DIR"] = str(env.node_dir)
    if env.system.key == "rq":
        values["RQ_KEY_PREFIX"] = prefix
    if env.system.checkout:  # the broker alone reads none of them: the same environment
        for name in [k for k in values if k.startswith("GCMC_JOBS_")]:
            del values[name]
        values.update(
            GCMC_JOBS_BROKER_URL=REDIS_URL,
            GCMC_JOBS_NAMESPACE=prefix,
            GCMC_JOBS_RATE_LIMIT=str(RATE_LIMIT),
            # Never opened on these workloads (dead letters only); kept out of the repository.
            GCMC_JOBS_DATABASE_URL=f"sqlite:///{run_dir / 'gcmc_jobs.sqlite3'}",
        )
    return values


def _enqueue_command(env: Environment, workload: str, n: int) -> list[str]:
    if env.system.node:
        return ["node", str(APPS / env.system.app), "enqueue", workload, str(n)]
    return [env.python, str(APPS / env.system.app), "enqueue", workload, str(n)]


def _worker_commands(env: Environment) -> list[list[str]]:
    """The commands that start the system's 2 worker processes (one command may fork both)."""
    key = env.system.key
    if key == "bullmq":
        return [["node", str(APPS / env.system.app), "worker"]] * 2
    if key in ("gcmc-jobs", "gcmc-broker", "dramatiq"):
        module = Path(env.system.app).stem
        return [[env.python, "-m", "dramatiq", module, "--processes", "2", "--threads", "8",
                 "--queues", QUEUE]]  # fmt: skip
    assert env.bin is not None
    if key == "celery":
        return [[str(env.bin / "celery"), "-A", "celery_peer", "worker", "-P", "threads",
                 "-c", "8", "-Q", QUEUE, "-n", f"bench{i}@%h", "--without-gossip",
                 "--without-mingle", "--without-heartbeat"] for i in (1, 2)]  # fmt: skip
    if key == "arq":
        return [[str(env.bin / "arq"), "arq_peer.WorkerSettings"]] * 2
    if key == "rq":
        # SimpleWorker: RQ's default class forks a work horse per job (~20 jobs/s a worker
        # and ~23 ms of CPU per job here); its in-process class is its fastest.
        return [[str(env.bin / "rq"), "worker-pool", "-n", "8", "-w", "rq.SimpleWorker",
                 "-u", REDIS_URL, QUEUE]] * 2  # fmt: skip
    raise ValueError(key)


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _tree_cpu(roots: Sequence[psutil.Process]) -> float:
    """CPU seconds (user + system) of ``roots`` and all their descendants, the ones already
    reaped included (in their parents' children times)."""
    total = 0.0
    seen: set[int] = set()
    for root in roots:
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in processes:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _delete_keys(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


def _enqueue(
    env: Environment, workload: str, n: int, environ: dict[str, str], log: Path
) -> dict[str, Any]:
    with log.open("ab") as err:
        done = subprocess.run(
            _enqueue_command(env, workload, n),
            cwd=APPS, env=environ, stdout=subprocess.PIPE, stderr=err, timeout=900, check=False,
        )  # fmt: skip
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"enqueue exited {done.returncode}; see {log}")
    report: dict[str, Any] = json.loads(lines[-1])
    if report["queued"] != n:
        raise RuntimeError(f"queued {report['queued']} of {n}")
    return report


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what we started
            process.wait()


def run(env: Environment, workload: str, n: int, round_no: int, run_dir: Path) -> Result:
    """One system on one workload: a fresh prefix, enqueue, (process,) measure, clean up."""
    result = Result(env.system.key, workload, round_no)
    prefix = f"bench_peers_{TAG}_{env.system.key.replace('-', '_')}_{workload}_r{round_no + 1}"
    environ = _environ(env, prefix, workload, run_dir)
    log = run_dir / f"{prefix}.log"
    client = redis.Redis.from_url(REDIS_URL)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        before = _redis_cpu(client)
        report = _enqueue(env, workload, n, environ, log)
        result.api = report["api"]
        if workload == "W2":
            result.rate = n / report["seconds"]
            result.worker_us = report["cpu_seconds"] / n * 1e6
            result.redis_us = (_redis_cpu(client) - before) / n * 1e6
            return result
        counter = environ["BENCH_COUNTER"]
        with log.open("ab") as out:
            for command in _worker_commands(env):
                popen = subprocess.Popen(
                    command, cwd=APPS, env=environ, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
                workers.append(popen)
        roots = [psutil.Process(w.pid) for w in workers]
        low, high = window_marks(n)
        start = last_move = time.monotonic()
        last = 0
        marks: list[tuple[int, float, float, float]] = []
        while True:
            done = int(client.get(counter) or 0)
            now = time.monotonic()
            while len(marks) < 2 and done >= (low, high)[len(marks)]:
                marks.append((done, now, _tree_cpu(roots), _redis_cpu(client)))
            if done >= n:
                break
            if done != last:
                last, last_move = done, now
            if all(w.poll() is not None for w in workers):
                raise RuntimeError(f"the workers exited after {done} of {n}; see {log}")
            if now - start > deadline_s(n) or now - last_move > STALL_S:
                raise RuntimeError(f"{done} of {n} processed after {now - start:.0f} s")
            time.sleep(0.005)
        (c1, t1, w1, r1), (c2, t2, w2, r2) = marks
        if c2 <= c1 or t2 <= t1:
            raise RuntimeError(f"{n} jobs are too few to time (use a larger N)")
        jobs = c2 - c1
        result.rate = jobs / (t2 - t1)
        result.worker_us = (w2 - w1) / jobs * 1e6
        result.redis_us = (r2 - r1) / jobs * 1e6
        time.sleep(0.5)
        extra = int(client.get(counter) or 0) - n
        if extra:
            result.notes.append(f"{extra} jobs ran twice")
        return result
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        result.rate = result.worker_us = result.redis_us = None
        result.failed = str(exc)
        return result
    finally:
        _stop(workers)
        _delete_keys(client, prefix)
        client.close()


# -- Report -------------------------------------------------------------------------------


def not_applicable(system: System, workload: str) -> str:
    """How the tables show a workload that does not apply to ``system``."""
    return f"n/a: {system.not_applicable[workload]}"


def _print_round_line(result: Result, name: str) -> None:
    if result.failed:
        print(f"  {result.workload} {name:{WIDTH}s} FAILED: {result.failed}", flush=True)
        return
    what = "enqueued" if result.workload == "W2" else "processed"
    cpu = "client" if result.workload == "W2" else "worker"
    print(
        f"  {result.workload} {name:{WIDTH}s} {fmt_number(result.rate):>8s} jobs/s {what}, "
        f"{cpu} {fmt_number(result.worker_us, ' µs')}/job, "
        f"Redis {fmt_number(result.redis_us, ' µs')}/job"
        + (f"  [{'; '.join(result.notes)}]" if result.notes else ""),
        flush=True,
    )


TITLES = {
    "W1": "{n:,} no-op jobs, processed",
    "W2": "{n:,} jobs enqueued in bulk",
    "W3": "{n:,} jobs with a dedup key and a per-key rate limit ({keys:,} keys), processed",
}
#: Issue 17's targets: gcmc-jobs' rate at least this many times BullMQ's.
TARGETS = {"W1": 1.0, "W2": 1.0, "W3": 1.0}


def summarize(
    results: Sequence[Result],
    systems: Sequence[System],
    workloads: Sequence[str],
    rounds: int,
    ns: dict[str, int],
) -> str:
    """The report: per workload, each system's medians and its rate as a multiple of
    gcmc-jobs' (taken within each round, then the median over rounds); the same as one
    Markdown table; and issue 17's targets against BullMQ."""

    def series(key: str, workload: str, attr: str) -> list[float | None]:
        found = {r.round: r for r in results if r.system == key and r.workload == workload}
        return [getattr(found[i], attr) if i in found else None for i in range(rounds)]

    def of(key: str, workload: str) -> list[Result]:
        return [r for r in results if r.system == key and r.workload == workload]

    out: list[str] = []
    md_rows: list[list[str]] = []
    for workload in workloads:
        cpu_label = "client µs/job" if workload == "W2" else "worker µs/job"
        title = TITLES[workload].format(n=ns[workload], keys=KEYS)
        out.append(f"\n{workload}: {title} (medians of {rounds} round(s))")
        out.append(
            f"  {'system':{WIDTH}s} {'jobs/s':>8s} {'x gcmc':>7s} {cpu_label:>14s} "
            f"{'Redis µs/job':>13s}" + ("" if workload == "W1" else "  how")
        )
        rate_row, cpu_row = [f"{workload}: jobs/s"], [f"{workload}: {cpu_label}"]
        redis_row = [f"{workload}: Redis µs/job"]
        how_row = [f"{workload}: " + ("bulk API" if workload == "W2" else "what it does")]
        base = series("gcmc-jobs", workload, "rate")
        for system in systems:
            if not system.applies(workload):
                out.append(f"  {system.name:{WIDTH}s} {not_applicable(system, workload)}")
                rate_row.append(not_applicable(system, workload))
                cpu_row.append("n/a")
                redis_row.append("n/a")
                how_row.append("")
                continue
            rate = series(system.key, workload, "rate")
            rate_m = median(rate)
            ratio = median(ratios(rate, base))
            cpu_m = median(series(system.key, workload, "worker_us"))
            redis_m = median(series(system.key, workload, "redis_us"))
            failed = [f"r{r.round + 1}: {r.failed}" for r in of(system.key, workload) if r.failed]
            apis = sorted({r.api for r in of(system.key, workload) if r.api})
            how = {"W1": "", "W2": ", ".join(apis), "W3": system.w3}[workload]
            shown = "FAILED" if rate_m is None else fmt_number(rate_m)
            out.append(
                f"  {system.name:{WIDTH}s} {shown:>8s} {fmt_ratio(ratio):>7s} "
                f"{fmt_number(cpu_m):>14s} {fmt_number(redis_m):>13s}" + (f"  {how}" if how else "")
            )
            out += [f"  {'':{WIDTH}s} FAILED {line}" for line in failed]
            cell = shown
            if rate_m is not None and system.key != "gcmc-jobs":
                cell += f" ({fmt_ratio(ratio)})"
            if failed and rate_m is not None:
                cell += f" ({len(failed)} of {rounds} rounds FAILED)"
            rate_row.append(cell)
            cpu_row.append(fmt_number(cpu_m, " µs"))
            redis_row.append(fmt_number(redis_m, " µs"))
            how_row.append(how)
        md_rows += [rate_row, cpu_row, redis_row] + ([how_row] if workload != "W1" else [])
    out.append("\nAs a table (in parentheses: the rate as a multiple of gcmc-jobs', per round, "
               "median):\n")  # fmt: skip
    out.append(markdown_table(["workload", *(s.name for s in systems)], md_rows))
    if any(s.key == "bullmq" for s in systems):
        out.append("\nIssue 17's targets (gcmc-jobs' rate / BullMQ's, per round, median):")
        ceiling = next((s for s in systems if s.key == "gcmc-broker"), None)
        for workload in workloads:
            bullmq = series("bullmq", workload, "rate")
            mine = median(ratios(series("gcmc-jobs", workload, "rate"), bullmq))
            verdict = "-" if mine is None else ("met" if mine >= TARGETS[workload] else "NOT met")
            line = (
                f"  {workload}: {fmt_ratio(mine)} (target >= {TARGETS[workload]:.1f}x: {verdict})"
            )
            if ceiling is not None and ceiling.applies(workload):
                alone = median(ratios(series(ceiling.key, workload, "rate"), bullmq))
                line += (f"; {ceiling.name}: {fmt_ratio(alone)} (the ceiling of work on "
                         "gcmc-jobs' middleware)")  # fmt: skip
            out.append(line)
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="gcmc-jobs against its broker alone (the ceiling of middleware work), "
        "BullMQ, Celery, arq, RQ and bare Dramatiq: three workloads on the same Redis (sets up "
        "each peer's environment under benchmarks/.peers/ on the first run).",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke run: N={QUICK_N:,} per workload, 1 round"
    )
    parser.add_argument("--rounds", type=int, help="rounds, alternating the order (default 2)")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of: {', '.join(SYSTEMS)} (gcmc-jobs is always run: "
        "the ratios are to it)",
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset of W1,W2,W3"
    )
    parser.add_argument(
        "--n",
        type=int,
        help="jobs per workload, instead of the defaults (W1 and W3 10,000, W2 50,000)",
    )
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {unknown}; known: {', '.join(SYSTEMS)}")
    workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    if set(workloads) - set(WORKLOADS):
        parser.error(f"unknown workload(s) in {args.workloads!r}; known: W1,W2,W3")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 2)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    ns = dict.fromkeys(WORKLOADS, QUICK_N) if args.quick else dict(FULL_N)
    if args.n is not None:
        if args.n < 100:
            parser.error("--n must be at least 100")
        ns = dict.fromkeys(WORKLOADS, args.n)
    keys = ["gcmc-jobs", *[k for k in SYSTEMS if k in wanted and k != "gcmc-jobs"]]

    start_load = os.getloadavg()
    print(f"peers benchmark {TAG}: {', '.join(keys)}; workloads {', '.join(workloads)}; "
          f"N {', '.join(f'{w}={ns[w]:,}' for w in workloads)}; {rounds} round(s)")  # fmt: skip
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in start_load)} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip

    envs: dict[str, Environment] = {}
    skipped: dict[str, str] = {}
    for key in keys:
        prepared = prepare(SYSTEMS[key])
        if isinstance(prepared, str):
            skipped[key] = prepared
            print(f"  {SYSTEMS[key].name}: SKIPPED ({prepared})")
        else:
            envs[key] = prepared
            print(f"  {SYSTEMS[key].name}: {prepared.versions}")
    probe = redis.Redis.from_url(REDIS_URL)
    print(f"  Redis {probe.info('server')['redis_version']} at {REDIS_URL}")
    probe.close()

    shutil.rmtree(LOGS, ignore_errors=True)
    run_dir = LOGS / TAG
    run_dir.mkdir(parents=True)
    results: list[Result] = []
    for round_no in range(rounds):
        order = round_order([k for k in keys if k in envs], round_no)
        print(f"\nround {round_no + 1}: {', '.join(order)}")
        for workload, key, applies in round_plan(order, workloads):
            system = SYSTEMS[key]
            if not applies:
                print(f"  {workload} {system.name:{WIDTH}s} {not_applicable(system, workload)}")
                continue
            result = run(envs[key], workload, ns[workload], round_no, run_dir)
            results.append(result)
            _print_round_line(result, system.name)

    shown = [SYSTEMS[k] for k in keys if k in envs]
    print(summarize(results, shown, workloads, rounds, ns))
    for key, reason in skipped.items():
        print(f"\n{SYSTEMS[key].name}: SKIPPED ({reason})")
    print("\nversions: " + "; ".join(f"{e.system.name}: {e.versions}" for e in envs.values()))
    end_load = os.getloadavg()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in end_load)}")
    print(f"worker and enqueue logs: {run_dir.relative_to(ROOT)}")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

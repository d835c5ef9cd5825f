"""Benchmark: deleting a million expired rows while another connection keeps writing.

    .venv/bin/python benchmarks/retention.py                 # 1,000,000 expired email_log rows
    .venv/bin/python benchmarks/retention.py --rows 100000   # quicker

On PostgreSQL (``--server-url``, default the loopback one) it creates its own database,
migrates it, and fills ``email_log`` with ``--rows`` rows 500 days old (expired under the
400-day default) plus ``--rows / 10`` fresh ones. Then, twice (the table refilled between):

(a) **baseline** — one ``DELETE FROM email_log WHERE created_at < cutoff``, the obvious
    purge;
(b) **ours** — :func:`gcmc_jobs.services.retention.apply_retention` (batches of
    ``--batch-size`` rows, each its own transaction, ``FOR UPDATE SKIP LOCKED``).

While each runs, a writer in its own process keeps doing what the email actor does to
``email_log``: insert a new row, and update a row (half the time an expired one, half a
fresh one), each its own transaction, with ``lock_timeout`` at 200 ms: a statement that
would wait longer for a lock fails and is counted ("locked"; target for ours: none). Prints
the purge's time, rows deleted, the writer's statements and their p50, p99 and longest time
(which also holds CPU waits on a busy machine), and the lock timeouts.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, delete, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services.retention import RetentionPolicy, apply_retention

console = Console(width=120)
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=500)


def write_until_stopped(
    url: str,
    expired_ids: tuple[int, int],
    fresh_ids: tuple[int, int],
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """The writer, in its own process (no GIL shared with the purge): insert a row and
    update one (alternately an expired and a fresh one), each its own transaction, timing
    every statement, until ``stop`` is set; then put (times, lock timeouts) on
    ``results``. ``lock_timeout`` is 200 ms: a statement that would wait longer for a lock
    fails and is counted."""
    engine = make_engine(url, pool_size=1)
    times: list[float] = []
    lock_timeouts = 0
    n = 0
    with engine.connect() as connection:
        connection.execute(text("SET lock_timeout = '200ms'"))
        connection.commit()
        while not stop.is_set():
            n += 1
            low, high = expired_ids if n % 2 else fresh_ids
            target = low + (n * 7919) % max(1, high - low)
            for statement, params in (
                (
                    "INSERT INTO email_log (dedup_key, to_address, kind, subject, status, "
                    "attempts, created_at) VALUES (:k, 'w@example.com', 'welcome', 's', "
                    "'sent', 1, now())",
                    {"k": uuid.uuid4().hex},
                ),
                ("UPDATE email_log SET attempts = attempts + 1 WHERE id = :id", {"id": target}),
            ):
                started = time.perf_counter()
                try:
                    connection.execute(text(statement), params)
                    connection.commit()
                except Exception as exc:
                    connection.rollback()
                    if "lock timeout" in str(exc):
                        lock_timeouts += 1
                    else:
                        raise
                times.append(time.perf_counter() - started)
            if n == 20:
                ready.set()  # connected and writing: the purge may start
            time.sleep(0.002)
    engine.dispose()
    results.put((times, lock_timeouts))


def fill(engine: Engine, rows: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``rows`` expired rows and ``rows // 10`` fresh ones; their id ranges."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE email_log RESTART IDENTITY CASCADE"))
        connection.execute(
            text(
                "INSERT INTO email_log (dedup_key, to_address, kind, subject, status, attempts, "
                "created_at) SELECT 'old-' || g, 'a@example.com', 'welcome', 's', 'sent', 1, "
                ":old FROM generate_series(1, :n) g"
            ),
            {"old": OLD, "n": rows},
        )
        connection.execute(
            text(
                "INSERT INTO email_log (dedup_key, to_address, kind, subject, status, attempts, "
                "created_at) SELECT 'new-' || g, 'a@example.com', 'welcome', 's', 'sent', 1, "
                "now() FROM generate_series(1, :n) g"
            ),
            {"n": rows // 10},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE email_log"))
    return (1, rows), (rows + 1, rows + rows // 10)


@dataclass
class Result:
    name: str
    seconds: float
    deleted: int
    writes: list[float]
    lock_timeouts: int

    @property
    def longest(self) -> float:
        return max(self.writes, default=0.0)


def measure(name: str, engine: Engine, rows: int, purge: Callable[[], int]) -> Result:
    expired, fresh = fill(engine, rows)
    spawn = multiprocessing.get_context("spawn")
    ready, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
    url = engine.url.render_as_string(hide_password=False)
    writer = spawn.Process(
        target=write_until_stopped, args=(url, expired, fresh, ready, stop, results), daemon=True
    )
    writer.start()
    if not ready.wait(timeout=120):  # the writer writing before the purge starts
        raise RuntimeError("the writer process did not start writing")
    started = time.perf_counter()
    deleted = purge()
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    stop.set()
    times, lock_timeouts = results.get(timeout=60)
    writer.join(timeout=10)
    return Result(name, seconds, deleted, times, lock_timeouts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="expired rows to delete")
    parser.add_argument("--batch-size", type=int, default=2_000, help="rows per batch (ours)")
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    args = parser.parse_args(argv)
    with bench_database(args.server_url, "retention", pool_size=4) as engine:
        upgrade(engine)
        tables = tables_of(engine)
        log = tables.email_log

        def baseline() -> int:
            with engine.begin() as connection:
                cutoff = NOW - timedelta(days=400)
                return connection.execute(delete(log).where(log.c.created_at < cutoff)).rowcount

        def ours() -> int:
            counts = apply_retention(
                engine,
                tables,
                RetentionPolicy(),
                now=NOW,
                batch_size=args.batch_size,
                only=("email_log",),
            )
            return counts["email_log"]

        console.print(f"email_log: {args.rows:,} expired rows and {args.rows // 10:,} fresh ones")
        results = [
            measure("baseline: one DELETE", engine, args.rows, baseline),
            measure(f"ours: batches of {args.batch_size:,}", engine, args.rows, ours),
        ]
    table = Table(title="Purging expired email_log rows while a writer writes")
    columns = ("purge", "seconds", "deleted", "writes", "p50 ms", "p99 ms", "longest ms", "locked")
    for column in columns:
        table.add_column(column, justify="right" if column != "purge" else "left")
    for r in results:
        ordered = sorted(r.writes)
        p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
        table.add_row(
            r.name,
            f"{r.seconds:.1f}",
            f"{r.deleted:,}",
            f"{len(r.writes):,}",
            f"{statistics.median(r.writes) * 1000:.1f}" if r.writes else "-",
            f"{p99 * 1000:.1f}",
            f"{r.longest * 1000:.1f}",
            f"{r.lock_timeouts:,}",
        )
    console.print(table)
    base, ours_result = results
    if base.deleted != ours_result.deleted:
        console.print(f"[red]deleted counts differ: {base.deleted} vs {ours_result.deleted}[/]")
        return 1
    met = ours_result.lock_timeouts == 0
    console.print(
        f"writer statements that waited over 200 ms for a lock (lock_timeout): baseline "
        f"{base.lock_timeouts}, ours {ours_result.lock_timeouts}; longest statement: baseline "
        f"{base.longest * 1000:.0f} ms, ours {ours_result.longest * 1000:.0f} ms (CPU "
        "included: the machine's load shows there). Target, no lock wait of 200 ms: "
        + ("[green]met[/]" if met else "[red]not met[/]")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

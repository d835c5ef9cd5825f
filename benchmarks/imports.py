"""Benchmark: importing clients set-based next to one ORM insert per row, in the same run.

    .venv/bin/python benchmarks/imports.py              # 100,000 clients
    .venv/bin/python benchmarks/imports.py --rows 10000 --repeat 1

On PostgreSQL (``--server-url``, default the loopback one) it creates its own database
``gcmc_bench_imports_<random>``, migrates it, makes a tenant for each run below (one member,
the same user, in each), writes a CSV file of ``--rows`` clients (external id, name, e-mail,
the member as assigned user, active flag) and then, each into its own tenant:

(a) **baseline** — the ORM way: one transaction, one ``Client`` object added and flushed per
    row (one ``INSERT`` per row), the assigned user looked up once and cached, nothing
    recorded for idempotency (the baseline is given every advantage);
(b) **ours** — :func:`gcmc_jobs.services.imports.import_csv` on the same file: every row
    validated, ``COPY`` into a temporary table, references resolved and the merge done
    set-based, the external ids recorded in ``import_keys``; ``--repeat`` times (3 by
    default), each into a new tenant, right after (a);
(c) **ours again** — the same file imported a second time into (b)'s first tenant (nothing
    changes: the idempotent path, every row compared).

It prints wall time, rows per second, CPU time and SQL statements of each run (those
SQLAlchemy executes; our ``COPY`` goes through the driver's cursor and is one more). CPU is
the benchmark process's (``time.process_time``: the ORM, or the CSV parsing and validation)
and the PostgreSQL backend's that served the run (``/proc/<pid>/stat`` of its process, on a
server on this machine; "n/a" otherwise): unlike wall time it barely moves with the load.
Then the ratio (a) / (b), on the median of (b)'s runs (issue 15 target: at least 20x), with
each run's ratio and the CPU ratio beside it, checks that every tenant holds the same clients,
and prints the machine's load (``os.getloadavg``) before and after.

Why (b) is run more than once: (a) takes a minute or more, so its wall time averages the
load of the machine over that minute; (b) takes a second or two, so one run samples the
load of one moment, and a spike from another process can triple it. The median of a few
runs of (b) is the counterpart of (a)'s average; (a) itself is unchanged.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.db.enums import Role
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import Client, Tenant, TenantUser, User
from gcmc_jobs.services.imports import import_csv

console = Console(width=110)


@contextmanager
def counted(engine: Engine) -> Iterator[list[int]]:
    """The number of statements ``engine`` executes inside the block (``[n]``)."""
    seen = [0]

    def count(*_: object) -> None:
        seen[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def write_file(path: Path, rows: int, owner_email: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("external_id", "name", "email", "assigned_user_email", "is_active"))
        for n in range(rows):
            writer.writerow(
                (
                    f"crm-{n:07d}",
                    f"Client {n} Ltd",
                    f"client{n}@example.com",
                    owner_email if n % 3 == 0 else "",
                    "true" if n % 10 else "false",
                )
            )


def make_tenants(engine: Engine, count: int) -> tuple[list[int], str]:
    """``count`` tenants with one owner (the same user, a member of each); their ids and the
    owner's e-mail."""
    with Session(engine) as session:
        tenants = [Tenant(name=f"Tenant {n}") for n in range(count)]
        owner = User(email="owner@example.com", name="Owner")
        session.add_all([*tenants, owner])
        session.flush()
        session.add_all(
            [TenantUser(tenant_id=t.id, user_id=owner.id, role=Role.OWNER) for t in tenants]
        )
        session.commit()
        return [t.id for t in tenants], owner.email


@dataclass
class Measured:
    """One run: wall and CPU seconds (this process; the PostgreSQL backend's, None when it
    cannot be read), statements, and what the run returned."""

    wall: float
    cpu: float
    server_cpu: float | None
    statements: int
    outcome: Any


def backend_cpu(pid: int) -> float | None:
    """User + system CPU seconds of PostgreSQL backend ``pid``, if it runs on this machine."""
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return None
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def measure(engine: Engine, run: Callable[[], Any]) -> Measured:
    """Run ``run`` on ``engine`` (a pool of one connection, so one backend serves it)."""
    pid = backend_pid(engine)
    server_before = backend_cpu(pid)
    with counted(engine) as statements:
        cpu_before, started = time.process_time(), time.perf_counter()
        outcome = run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    server_after = backend_cpu(pid)
    server = None
    if server_before is not None and server_after is not None and backend_pid(engine) == pid:
        server = server_after - server_before
    return Measured(wall, cpu, server, statements[0], outcome)


def orm_baseline(engine: Engine, path: Path, tenant_id: int, owner_email: str) -> int:
    """One ``Client`` added and flushed per row, in one transaction."""
    users: dict[str, int | None] = {}
    rows = 0
    with Session(engine) as session, path.open(newline="", encoding="utf-8") as source:
        for record in csv.DictReader(source):
            email = record["assigned_user_email"] or None
            if email is not None and email not in users:
                users[email] = session.scalar(select(User.id).where(User.email == email))
            session.add(
                Client(
                    tenant_id=tenant_id,
                    name=record["name"],
                    email=record["email"] or None,
                    assigned_user_id=users[email] if email else None,
                    is_active=record["is_active"] == "true",
                )
            )
            session.flush()
            session.expunge_all()
            rows += 1
        session.commit()
    return rows


def snapshot(engine: Engine, tenant_id: int) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                select(Client.name, Client.email, Client.assigned_user_id, Client.is_active)
                .where(Client.tenant_id == tenant_id)
                .order_by(Client.name)
            )
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="clients in the file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (b), their median counts")
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with (
        bench_database(args.server_url, "imports", pool_size=1, max_overflow=0) as engine,
        tempfile.TemporaryDirectory() as tmp,
    ):
        upgrade(engine)
        tenants, owner_email = make_tenants(engine, 1 + args.repeat)
        orm_tenant, our_tenants = tenants[0], tenants[1:]
        path = Path(tmp) / "clients.csv"
        write_file(path, args.rows, owner_email)
        console.print(f"{args.rows:,} clients, {path.stat().st_size / 1e6:.1f} MB of CSV")

        def ours(tenant: int) -> Measured:
            def run() -> Any:
                with path.open(newline="") as source:
                    return import_csv(engine, source, tenant_id=tenant, entity="clients")

            return measure(engine, run)

        orm = measure(engine, lambda: orm_baseline(engine, path, orm_tenant, owner_email))
        runs = [ours(tenant) for tenant in our_tenants]
        again = ours(our_tenants[0])
        expected = snapshot(engine, orm_tenant)
        same = all(snapshot(engine, tenant) == expected for tenant in our_tenants)
    load_after = os.getloadavg()

    if orm.outcome != args.rows:
        raise SystemExit(f"the ORM baseline inserted {orm.outcome} rows")
    for run in runs:
        if not (run.outcome.ok and run.outcome.inserted == args.rows):
            raise SystemExit(f"the set-based import did not insert every row: {run.outcome}")
    if not (again.outcome.ok and again.outcome.unchanged == args.rows):
        raise SystemExit(f"the second import changed something: {again.outcome}")

    table = Table(title=f"Importing {args.rows:,} clients")
    for column in ("run", "wall s", "rows/s", "CPU s", "PostgreSQL CPU s", "statements", "result"):
        table.add_column(column, justify="left" if column in ("run", "result") else "right")

    def row(name: str, m: Measured, result: str) -> None:
        server = "n/a" if m.server_cpu is None else f"{m.server_cpu:.2f}"
        table.add_row(
            name,
            f"{m.wall:.2f}",
            f"{args.rows / m.wall:,.0f}",
            f"{m.cpu:.2f}",
            server,
            f"{m.statements:,}",
            result,
        )

    row("(a) ORM, one insert per row", orm, f"{orm.outcome:,} inserted")
    for n, run in enumerate(runs, start=1):
        row(f"(b) ours, set-based, {n}", run, f"{run.outcome.inserted:,} inserted")
    row("(c) ours, same file again", again, f"{again.outcome.unchanged:,} unchanged")
    console.print(table)
    ratio = orm.wall / statistics.median(run.wall for run in runs)
    verdict = "met" if ratio >= 20 else "NOT met"
    each = ", ".join(f"{orm.wall / run.wall:.1f}x" for run in runs)
    console.print(
        f"ratio (a)/(b), median of {len(runs)} runs of (b): {ratio:.1f}x "
        f"(target ≥ 20x: {verdict}); each run: {each}"
    )
    if orm.server_cpu is not None and all(run.server_cpu is not None for run in runs):
        cpu = statistics.median(run.cpu + (run.server_cpu or 0.0) for run in runs)
        console.print(
            f"CPU ratio (a)/(b), this process + PostgreSQL: {(orm.cpu + orm.server_cpu) / cpu:.1f}x"
            f" ({orm.cpu + orm.server_cpu:.1f} s / {cpu:.2f} s)"
        )
    console.print(f"same clients in every tenant: {same}")
    console.print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
        + f"; {os.cpu_count()} CPUs"
    )
    return 0 if same and ratio >= 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())

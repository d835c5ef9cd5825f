"""Benchmark: importing clients set-based next to one ORM insert per row, in the same run.

    .venv/bin/python benchmarks/imports.py              # 100,000 clients
    .venv/bin/python benchmarks/imports.py --rows 10000

On PostgreSQL (``--server-url``, default the loopback one) it creates its own database
``gcmc_bench_imports_<random>``, migrates it, makes two tenants with one member each, writes
a CSV file of ``--rows`` clients (external id, name, e-mail, the member as assigned user,
active flag) and then, each into its own tenant:

(a) **baseline** — the ORM way: one transaction, one ``Client`` object added and flushed per
    row (one ``INSERT`` per row), the assigned user looked up once and cached, nothing
    recorded for idempotency (the baseline is given every advantage);
(b) **ours** — :func:`gcmc_jobs.services.imports.import_csv` on the same file: every row
    validated, ``COPY`` into a temporary table, references resolved and the merge done
    set-based, the external ids recorded in ``import_keys``;
(c) **ours again** — the same file imported a second time (nothing changes: the idempotent
    path, every row compared).

It prints wall time, rows per second and SQL statements of each (those SQLAlchemy executes;
our ``COPY`` goes through the driver's cursor and is one more), the ratio (a)/(b) (issue 15
target: at least 20x), checks that both tenants hold the same clients, and the machine's load
(``os.getloadavg``) before and after.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

console = Console()


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


def make_tenants(engine: Engine) -> tuple[int, int, int, str]:
    """Two tenants, one owner (member of both); their ids and the owner's id and e-mail."""
    with Session(engine) as session:
        a, b = Tenant(name="ORM"), Tenant(name="Set-based")
        owner = User(email="owner@example.com", name="Owner")
        session.add_all([a, b, owner])
        session.flush()
        session.add_all(
            [
                TenantUser(tenant_id=a.id, user_id=owner.id, role=Role.OWNER),
                TenantUser(tenant_id=b.id, user_id=owner.id, role=Role.OWNER),
            ]
        )
        session.commit()
        return a.id, b.id, owner.id, owner.email


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
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with bench_database(args.server_url, "imports") as engine, tempfile.TemporaryDirectory() as tmp:
        upgrade(engine)
        orm_tenant, our_tenant, _, owner_email = make_tenants(engine)
        path = Path(tmp) / "clients.csv"
        write_file(path, args.rows, owner_email)
        console.print(f"{args.rows:,} clients, {path.stat().st_size / 1e6:.1f} MB of CSV")

        with counted(engine) as orm_statements:
            started = time.perf_counter()
            orm_rows = orm_baseline(engine, path, orm_tenant, owner_email)
            orm_seconds = time.perf_counter() - started
        with counted(engine) as our_statements, path.open(newline="") as source:
            started = time.perf_counter()
            ours = import_csv(engine, source, tenant_id=our_tenant, entity="clients")
            our_seconds = time.perf_counter() - started
        with counted(engine) as again_statements, path.open(newline="") as source:
            started = time.perf_counter()
            again = import_csv(engine, source, tenant_id=our_tenant, entity="clients")
            again_seconds = time.perf_counter() - started
        same = snapshot(engine, orm_tenant) == snapshot(engine, our_tenant)
    load_after = os.getloadavg()

    if not (ours.ok and ours.inserted == orm_rows == args.rows):
        raise SystemExit(f"the set-based import did not insert every row: {ours}")
    if not (again.ok and again.unchanged == args.rows):
        raise SystemExit(f"the second import changed something: {again}")
    table = Table(title=f"Importing {args.rows:,} clients")
    for column in ("run", "wall s", "rows/s", "statements", "result"):
        table.add_column(column, justify="left" if column in ("run", "result") else "right")
    table.add_row(
        "(a) ORM, one insert per row",
        f"{orm_seconds:.2f}",
        f"{orm_rows / orm_seconds:,.0f}",
        f"{orm_statements[0]:,}",
        f"{orm_rows:,} inserted",
    )
    table.add_row(
        "(b) ours, set-based",
        f"{our_seconds:.2f}",
        f"{args.rows / our_seconds:,.0f}",
        f"{our_statements[0]:,}",
        f"{ours.inserted:,} inserted",
    )
    table.add_row(
        "(c) ours, same file again",
        f"{again_seconds:.2f}",
        f"{args.rows / again_seconds:,.0f}",
        f"{again_statements[0]:,}",
        f"{again.unchanged:,} unchanged",
    )
    console.print(table)
    ratio = orm_seconds / our_seconds
    verdict = "met" if ratio >= 20 else "NOT met"
    console.print(f"ratio (a)/(b): {ratio:.1f}x (target ≥ 20x: {verdict})")
    console.print(f"same clients in both tenants: {same}")
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

"""Benchmark: the monthly report chain's time per tenant at 1,000 clients.

    .venv/bin/python benchmarks/reports.py              # 5 tenants x 1,000 clients
    .venv/bin/python benchmarks/reports.py --quick      # 2 tenants x 200 clients

It creates its own PostgreSQL database (``--server-url``; dropped at the end), seeds it with
``gcmc-jobs seed``'s data (~10 documents and ~5 filings per client), refreshes every tenant
and writes a year of daily snapshots (so the trend has twelve months), and starts an SMTP
server (the packaged ``SmtpSink``) and a Dramatiq worker (8 threads) on the Redis at
``--redis-url`` (its own namespace). Then, for each tenant in turn:

(a) **chain** — ``start_report`` and wait until ``reports.status`` is ``completed``: four
    messages through Redis, each step reading the previous one's output from PostgreSQL;
(b) **inline** — the same four steps called one after the other in this process, no broker
    (the floor: what the work itself costs).

It prints each tenant's wall time for both, the mean, the ratio chain / inline (the cost of
the chain: queueing, the pipeline's hand-offs, the files going through the database), and
where the chain's time went per step (from the ``reports`` row's timestamps). Quote the
figures with the machine's load (``uptime``), which it prints first.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dramatiq
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gcmc_jobs
from benchmarks._database import bench_database
from gcmc_jobs.actors import reports as report_actors
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import Tenant
from gcmc_jobs.seeding import seed
from gcmc_jobs.services import reports
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink

console = Console(width=170)
NOW = datetime.now(UTC).replace(microsecond=0)


def prepare(engine: Engine, tenants: int, per_tenant: int) -> list[int]:
    """Seed, refresh every tenant, and back-fill a year of daily snapshots from today's."""
    upgrade(engine)
    console.print(f"seeding {tenants} tenants x {per_tenant:,} clients …")
    seed(engine, tenants=tenants, clients_per_tenant=per_tenant, seed=0, now=NOW)
    with Session(engine) as session:
        tenant_ids = list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
    for tenant_id in tenant_ids:
        with session_scope(engine) as session:
            refresh_tenant(session, tenant_id, now=NOW)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO compliance_snapshots SELECT s.tenant_id, s.day - d, s.clients, "
                "s.low, s.medium, s.high, s.average_score, s.missing_count, s.expired_count, "
                "s.expiring_count, s.overdue_count, s.computed_at FROM compliance_snapshots s "
                "CROSS JOIN generate_series(1, 400) AS d ON CONFLICT DO NOTHING"
            )
        )
    return tenant_ids


def wait_completed(
    engine: Engine, tenant_id: int, period: date, after: datetime, timeout_s: float
) -> None:
    """Wait until the report is completed by a chain started at ``after`` (an earlier
    completed run of the same report does not count)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with Session(engine) as session:
            state = reports.find_report(session, tenant_id, period)
        if (
            state is not None
            and state.status == "completed"
            and state.completed_at is not None
            and state.completed_at >= after
        ):
            return
        time.sleep(0.005)
    raise TimeoutError(f"report of tenant {tenant_id} not completed in {timeout_s} s")


def inline(engine: Engine, tenant_id: int, period: date) -> None:
    """The four steps' bodies, in this process (the actors' functions, called directly)."""
    label = reports.month_label(period)
    for step in (
        report_actors.aggregate_report,
        report_actors.render_report,
        report_actors.email_report,
        report_actors.record_report,
    ):
        step.fn(tenant_id, label)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 tenants x 200 clients")
    parser.add_argument("--tenants", type=int, default=None, help="default 5 (2 quick)")
    parser.add_argument("--clients-per-tenant", type=int, default=None, help="default 1,000")
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    tenants = args.tenants or (2 if args.quick else 5)
    per_tenant = args.clients_per_tenant or (200 if args.quick else 1_000)
    console.print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min)")

    with bench_database(args.server_url, "reports") as database, SmtpSink() as sink:
        url = database.url.render_as_string(hide_password=False)
        settings = Settings(
            database_url=url,
            broker_url=args.redis_url,
            namespace=f"gcmc_bench_reports_{uuid.uuid4().hex[:8]}",
            email_url=sink.url,
            log_level="WARNING",
        )
        with gcmc_jobs.configured(settings) as runtime:
            engine = runtime.engine
            tenant_ids = prepare(engine, tenants, per_tenant)
            period = reports.previous_period(NOW.date())
            runtime.broker.emit_after("process_boot")
            worker = dramatiq.Worker(runtime.broker, worker_threads=8, worker_timeout=50)
            worker.start()
            rows = []
            try:
                # Untimed warm-up: the first PDF imports fpdf2, Pillow and fontTools.
                inline(engine, tenant_ids[0], period)
                for tenant_id in tenant_ids:
                    started_at = datetime.now(UTC)
                    started = time.perf_counter()
                    report_actors.start_report(tenant_id, period, force=True)
                    wait_completed(engine, tenant_id, period, started_at, timeout_s=300)
                    chain_s = time.perf_counter() - started
                    with Session(engine) as session:
                        state = reports.find_report(session, tenant_id, period)
                    assert state is not None
                    started = time.perf_counter()
                    inline(engine, tenant_id, period)
                    inline_s = time.perf_counter() - started
                    rows.append((tenant_id, state, chain_s, inline_s, started_at))
            finally:
                worker.stop()
        mails = sink.count()

    table = Table(title=f"report chain per tenant ({per_tenant:,} clients), period {period}")
    for column in (
        "tenant",
        "clients",
        "overdue filings",
        "PDF bytes",
        "recipients",
        "(a) chain s",
        "(b) inline s",
        "a / b",
        "aggregate→render→email→record (ms)",
    ):
        table.add_column(column, justify="right")
    for tenant_id, state, chain_s, inline_s, started_at in rows:
        marks = [started_at, state.aggregated_at, state.rendered_at, state.emailed_at]
        marks.append(state.completed_at)
        steps = " / ".join(
            f"{(b - a) / timedelta(milliseconds=1):.0f}"
            for a, b in itertools.pairwise(marks)
            if a and b
        )
        pdf = next(f for f in state.files if f["content_type"] == "application/pdf")
        table.add_row(
            str(tenant_id),
            f"{state.data['distribution']['clients']:,}",
            f"{len(state.data['overdue_filings']):,}",
            f"{pdf['size']:,}",
            str(len(state.recipients)),
            f"{chain_s:.2f}",
            f"{inline_s:.2f}",
            f"{chain_s / inline_s:.2f}",
            steps,
        )
    console.print(table)
    chain = statistics.mean(r[2] for r in rows)
    floor = statistics.mean(r[3] for r in rows)
    console.print(
        f"mean per tenant: chain {chain:.2f} s, inline {floor:.2f} s, ratio {chain / floor:.2f}; "
        f"{mails} emails delivered; load now {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the compliance refresh against the audited loop and a one-statement floor.

    .venv/bin/python benchmarks/compliance_refresh.py            # 100 tenants x 1,000 clients
    .venv/bin/python benchmarks/compliance_refresh.py --quick    # 10 tenants x 200 clients

On PostgreSQL (``--server-url``, default the loopback one) it creates its own database
``gcmc_bench_compliance_<random>``, migrates it, seeds it with ``gcmc-jobs seed``'s data
(~10 documents and ~5 filings per client), and drops it at the end. Then, with one fixed
``now`` so that the three produce the same scores:

(a) **baseline** — the audited algorithm: per tenant, list its clients; per client, 4 count
    queries (missing, expired, expiring, overdue) and 1 upsert. It is linear in clients, so
    it runs on ``--baseline-tenants`` tenants (10) and is compared per client;
(b) **ours** — :func:`gcmc_jobs.services.compliance.refresh_tenant` for every tenant, one
    transaction per tenant (what the ``refresh_compliance`` actor does);
(c) **floor** — one hand-written ``INSERT … SELECT … GROUP BY … ON CONFLICT`` for all
    tenants at once.

For each it prints wall time, SQL statements (a ``before_cursor_execute`` listener) and
peak Python memory (tracemalloc, in a second pass so tracing does not slow the timed one),
the ratios (targets: ours ≥ 100x faster than the baseline per client; ours ≤ 1.5x the
floor), checks that all three stored identical scores, and compares our peak memory for
one tenant of 1,000 clients with all 100,000 clients (target: flat).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import (
    OPEN_FILING_STATUSES,
    Client,
    ComplianceScore,
    Document,
    DocumentStatus,
    DocumentVersion,
    Filing,
    Tenant,
)
from gcmc_jobs.seeding import seed
from gcmc_jobs.services.compliance import level_for, refresh_tenant, score_for

console = Console()
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Run:
    """What one algorithm did."""

    name: str
    clients: int
    tenants: int
    seconds: float
    statements: int
    peak_bytes: int = 0

    @property
    def per_client_ms(self) -> float:
        return 1000 * self.seconds / max(self.clients, 1)


@contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    """Count the SQL statements sent to ``engine`` inside the block."""
    count = [0]

    def listener(*_: Any) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def peak_memory(action: Callable[[], Any]) -> int:
    """Peak bytes Python allocated while ``action`` ran (tracemalloc), from a collected heap."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def tenant_todays(engine: Engine) -> dict[int, date]:
    with Session(engine) as session:
        rows = session.execute(select(Tenant.id, Tenant.timezone).order_by(Tenant.id)).all()
    return {tenant_id: NOW.astimezone(ZoneInfo(zone)).date() for tenant_id, zone in rows}


# -- (a) the audited algorithm ----------------------------------------------------------------


def baseline(engine: Engine, tenant_ids: list[int], todays: dict[int, date]) -> int:
    """Per client: 4 counts and 1 upsert, as the audited worker did (with DOMAIN.md's rules,
    so that its scores can be compared). Returns the number of clients scored."""
    scored = 0
    missing_statuses = [DocumentStatus.PENDING_REVIEW, DocumentStatus.REJECTED]
    for tenant_id in tenant_ids:
        today = todays[tenant_id]
        with Session(engine) as session, session.begin():
            clients = session.scalars(
                select(Client.id).where(Client.tenant_id == tenant_id, Client.is_active.is_(True))
            ).all()
            for client_id in clients:
                latest = (
                    select(func.count())
                    .select_from(Document)
                    .outerjoin(DocumentVersion, DocumentVersion.id == Document.latest_version_id)
                    .where(Document.client_id == client_id)
                )
                missing = session.scalar(
                    latest.where(
                        DocumentVersion.id.is_(None) | DocumentVersion.status.in_(missing_statuses)
                    )
                )
                expired = session.scalar(latest.where(DocumentVersion.expiry_date < today))
                expiring = session.scalar(
                    latest.where(
                        DocumentVersion.expiry_date.between(today, today + timedelta(days=30))
                    )
                )
                overdue = session.scalar(
                    select(func.count())
                    .select_from(Filing)
                    .where(
                        Filing.client_id == client_id,
                        Filing.status.in_(OPEN_FILING_STATUSES),
                        Filing.due_date < today,
                    )
                )
                counts = (missing or 0, expired or 0, expiring or 0, overdue or 0)
                score = score_for(*counts)
                values = {
                    "tenant_id": tenant_id,
                    "score": score,
                    "level": level_for(score),
                    "missing_count": counts[0],
                    "expired_count": counts[1],
                    "expiring_count": counts[2],
                    "overdue_count": counts[3],
                    "computed_at": NOW,
                }
                upsert = insert(ComplianceScore).values(client_id=client_id, **values)
                session.execute(
                    upsert.on_conflict_do_update(index_elements=["client_id"], set_=values)
                )
                scored += 1
    return scored


# -- (b) ours ---------------------------------------------------------------------------------


def ours(engine: Engine, tenant_ids: list[int]) -> int:
    """``refresh_tenant`` per tenant, one transaction each (as the actor runs it)."""
    scored = 0
    for tenant_id in tenant_ids:
        with Session(engine) as session, session.begin():
            scored += refresh_tenant(session, tenant_id, now=NOW).clients
    return scored


# -- (c) the floor ----------------------------------------------------------------------------

FLOOR_SQL = text(
    """
    INSERT INTO compliance_scores (client_id, tenant_id, score, level, missing_count,
                                   expired_count, expiring_count, overdue_count, computed_at)
    SELECT c.id, c.tenant_id, s.score,
           CASE WHEN s.score >= 80 THEN 'low' WHEN s.score >= 50 THEN 'medium' ELSE 'high' END,
           s.missing, s.expired, s.expiring, s.overdue, :now
    FROM clients c
    JOIN tenants t ON t.id = c.tenant_id
    LEFT JOIN (
        SELECT d.client_id,
               count(*) FILTER (WHERE v.id IS NULL
                                   OR v.status IN ('pending_review', 'rejected')) AS missing,
               count(*) FILTER (WHERE v.expiry_date < td.today) AS expired,
               count(*) FILTER (WHERE v.expiry_date BETWEEN td.today AND td.today + 30)
                   AS expiring
        FROM documents d
        JOIN tenants dt ON dt.id = d.tenant_id
        CROSS JOIN LATERAL (SELECT (:now AT TIME ZONE dt.timezone)::date AS today) td
        LEFT JOIN document_versions v ON v.id = d.latest_version_id
        GROUP BY d.client_id
    ) docs ON docs.client_id = c.id
    LEFT JOIN (
        SELECT f.client_id, count(*) AS overdue
        FROM filings f
        JOIN tenants ft ON ft.id = f.tenant_id
        WHERE f.status IN ('draft', 'prepared')
          AND f.due_date < (:now AT TIME ZONE ft.timezone)::date
        GROUP BY f.client_id
    ) fil ON fil.client_id = c.id
    CROSS JOIN LATERAL (
        SELECT coalesce(docs.missing, 0) AS missing, coalesce(docs.expired, 0) AS expired,
               coalesce(docs.expiring, 0) AS expiring, coalesce(fil.overdue, 0) AS overdue,
               greatest(0, 100 - 5 * (coalesce(docs.missing, 0) + coalesce(docs.expired, 0)
                   + coalesce(docs.expiring, 0) + coalesce(fil.overdue, 0))) AS score
    ) s
    WHERE c.is_active AND t.is_active
    ON CONFLICT (client_id) DO UPDATE SET
        tenant_id = excluded.tenant_id, score = excluded.score, level = excluded.level,
        missing_count = excluded.missing_count, expired_count = excluded.expired_count,
        expiring_count = excluded.expiring_count, overdue_count = excluded.overdue_count,
        computed_at = excluded.computed_at
    """
)


def floor(engine: Engine) -> int:
    """Every tenant's scores in one statement."""
    with engine.begin() as connection:
        result = connection.execute(FLOOR_SQL, {"now": NOW})
        return int(result.rowcount)


# -- Harness ----------------------------------------------------------------------------------


def snapshot(engine: Engine, tenant_ids: list[int] | None = None) -> dict[int, tuple[Any, ...]]:
    query = select(
        ComplianceScore.client_id,
        ComplianceScore.tenant_id,
        ComplianceScore.score,
        ComplianceScore.level,
        ComplianceScore.missing_count,
        ComplianceScore.expired_count,
        ComplianceScore.expiring_count,
        ComplianceScore.overdue_count,
        ComplianceScore.computed_at,
    )
    if tenant_ids is not None:
        query = query.where(ComplianceScore.tenant_id.in_(tenant_ids))
    with engine.connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(query)}


def clear_scores(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE compliance_scores"))
        connection.execute(text("ANALYZE compliance_scores"))


def timed(engine: Engine, name: str, tenants: int, action: Callable[[], int]) -> Run:
    with counting(engine) as statements:
        started = time.perf_counter()
        clients = action()
        seconds = time.perf_counter() - started
    return Run(name, clients, tenants, seconds=seconds, statements=statements[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 tenants x 200 clients")
    parser.add_argument("--tenants", type=int, default=None, help="default 100 (10 quick)")
    parser.add_argument("--clients-per-tenant", type=int, default=None, help="default 1,000")
    parser.add_argument("--baseline-tenants", type=int, default=None, help="default 10 (2)")
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    args = parser.parse_args(argv)
    tenants = args.tenants or (10 if args.quick else 100)
    per_tenant = args.clients_per_tenant or (200 if args.quick else 1_000)
    baseline_tenants = min(args.baseline_tenants or (2 if args.quick else 10), tenants)

    with bench_database(args.server_url, "compliance") as engine:
        upgrade(engine)
        console.print(f"seeding {tenants} tenants x {per_tenant:,} clients …")
        started = time.perf_counter()
        seeded = seed(engine, tenants=tenants, clients_per_tenant=per_tenant, seed=0, now=NOW)
        seed_seconds = time.perf_counter() - started
        console.print(
            f"seeded {seeded.total:,} rows in {seed_seconds:.1f} s "
            f"({seeded.rows['documents']:,} documents, {seeded.rows['document_versions']:,} "
            f"versions, {seeded.rows['filings']:,} filings)"
        )
        with Session(engine) as session:
            all_tenants = list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
        few = all_tenants[:baseline_tenants]
        todays = tenant_todays(engine)

        # Timed passes (no tracing), each from an empty scores table.
        clear_scores(engine)
        base = timed(engine, "(a) audited loop", len(few), lambda: baseline(engine, few, todays))
        base_scores = snapshot(engine)
        clear_scores(engine)
        our = timed(engine, "(b) ours", len(all_tenants), lambda: ours(engine, all_tenants))
        our_scores = snapshot(engine)
        clear_scores(engine)
        flo = timed(engine, "(c) floor", len(all_tenants), lambda: floor(engine))
        floor_scores = snapshot(engine)

        # Memory passes (tracemalloc slows Python code, so apart from the timed ones).
        base.peak_bytes = peak_memory(lambda: baseline(engine, few[:1], todays))
        our.peak_bytes = peak_memory(lambda: ours(engine, all_tenants))
        flo.peak_bytes = peak_memory(lambda: floor(engine))
        one_tenant_peak = peak_memory(lambda: ours(engine, all_tenants[:1]))
        # Flat memory: one tenant as large as the whole data set, refreshed by the same code.
        big_clients = per_tenant * tenants
        console.print(f"seeding one more tenant of {big_clients:,} clients …")
        seed(engine, tenants=1, clients_per_tenant=big_clients, seed=1, now=NOW)
        with Session(engine) as session:
            big_tenant = session.scalar(select(func.max(Tenant.id)))
        assert big_tenant is not None
        ours(engine, [big_tenant])  # warm, as the small tenant was
        big_tenant_peak = peak_memory(lambda: ours(engine, [big_tenant]))

    identical = (
        base_scores == {k: v for k, v in our_scores.items() if v[0] in set(few)}
        and our_scores == floor_scores
        and len(our_scores) > 0
    )
    report(base, our, flo, seed_seconds, seeded.total, identical)
    console.print(
        f"peak memory, ours, one tenant: {one_tenant_peak / 2**20:.2f} MiB at {per_tenant:,} "
        f"clients, {big_tenant_peak / 2**20:.2f} MiB at {big_clients:,} clients (target: flat)"
    )
    return 0 if identical else 1


def report(
    base: Run,
    our: Run,
    flo: Run,
    seed_seconds: float,
    seeded_rows: int,
    identical: bool,
) -> None:
    table = Table(title="Compliance refresh on PostgreSQL")
    columns = ("algorithm", "tenants", "clients", "wall s", "ms/client", "statements", "peak MiB")
    for column in columns:
        table.add_column(column, justify="left" if column == "algorithm" else "right")
    for run in (base, our, flo):
        table.add_row(
            run.name,
            str(run.tenants),
            f"{run.clients:,}",
            f"{run.seconds:.2f}",
            f"{run.per_client_ms:.4f}",
            f"{run.statements:,}",
            f"{run.peak_bytes / 2**20:.2f}",
        )
    console.print(table)
    speedup = base.per_client_ms / our.per_client_ms
    versus_floor = our.seconds / flo.seconds
    console.print(f"seed: {seeded_rows:,} rows in {seed_seconds:.1f} s")
    console.print(
        f"ours vs audited loop, per client: [bold]{speedup:,.0f}x faster[/] "
        f"(target >= 100x) {'[green]OK' if speedup >= 100 else '[red]MISSED'}[/]"
    )
    console.print(
        f"ours vs floor: [bold]{versus_floor:.2f}x[/] the floor's time "
        f"(target <= 1.5x) {'[green]OK' if versus_floor <= 1.5 else '[red]MISSED'}[/]"
    )
    console.print(
        f"statements: audited {base.statements / max(base.clients, 1):.2f} per client; "
        f"ours {our.statements / our.tenants:.0f} per tenant; floor "
        f"{flo.statements} in all"
    )
    console.print(
        "scores: [green]identical in all three[/]" if identical else "scores: [red]DIFFER[/]"
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the daily email fan-out (audited vs ours) and bulk enqueue (Redis).

    .venv/bin/python benchmarks/daily_fanout.py            # 100 tenants x 1,000 clients
    .venv/bin/python benchmarks/daily_fanout.py --quick    # 10 tenants x 200 clients, 20,000 msgs

Needs PostgreSQL (``--server-url``) and Redis (``--redis-url``) on loopback. It creates its
own database ``gcmc_bench_fanout_<random>`` (seeded with ``gcmc-jobs seed``'s data: ~10
documents, ~5 filings and ~16 members per client's tenant) and its own Redis namespace, and
removes both at the end.

Part 1, the two daily email jobs (document expiry, filing reminders) for every tenant:

(a) **audited** — on ``--baseline-tenants`` tenants (10; it is linear in tenants, so the
    comparison is per tenant): per warning day, the documents (filings) hitting it; per document
    (filing) one query for the tenant's users; per (document, user) one ``send()`` of an
    email message (the audited ``document-expiry-{docId}-{userId}`` jobs), through our email
    actor and middleware;
(b) **ours** — :func:`gcmc_jobs.scheduling.run_for_tenant` (the ``run_daily_job`` actor's
    work): ledger claim, one SELECT per job and tenant for all (item, recipient) pairs, one
    digest per recipient, enqueued with :func:`gcmc_jobs.brokers.bulk.enqueue_many`.

Part 2, enqueueing N messages (100,000) of a trivial actor on a plain Dramatiq RedisBroker:
one-by-one ``send()``; ``enqueue_many`` (``batched``, default, and ``dispatch``: Dramatiq's
Lua script pipelined); and the floor: raw pipelined ``HSET`` + ``RPUSH`` per message. Then
the same with dedup keys on gcmc-jobs' middleware stack: ``send()`` per message (a claim
round trip each) vs ``enqueue_many`` (one ``claim_many`` per call).

Prints wall time, SQL statements, messages enqueued and ratios (targets: ours >= 20x faster
than the audited fan-out; bulk >= 5x one-by-one).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, and_, event, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.actors.schedule import digests_of
from gcmc_jobs.bootstrap import configured
from gcmc_jobs.brokers import build_broker
from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.db.engine import make_engine
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import (
    OPEN_FILING_STATUSES,
    Client,
    Document,
    DocumentVersion,
    Filing,
    Tenant,
    TenantUser,
    User,
)
from gcmc_jobs.logging import configure_logging
from gcmc_jobs.middleware.stores import Stores
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.seeding import seed
from gcmc_jobs.services.digests import DOCUMENT_WARNING_DAYS, FILING_WARNING_DAYS
from gcmc_jobs.settings import Settings

console = Console(width=130)
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Run:
    """What one approach did."""

    name: str
    seconds: float
    statements: int
    messages: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    """Count SQL statements sent on ``engine`` inside the block (``box[0]``)."""
    box = [0]

    def count(*_: Any) -> None:
        box[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield box
    finally:
        event.remove(engine, "before_cursor_execute", count)


def queue_length(client: redis.Redis, namespace: str, queue: str) -> int:
    return int(client.llen(f"{namespace}:{queue}"))


# -- Part 1 -------------------------------------------------------------------------------


def audited(engine: Engine, tenant_ids: list[int], send: Callable[..., Any]) -> tuple[int, int]:
    """The audited scheduledEmailJob: returns (documents+filings seen, emails sent)."""
    items = sent = 0
    with Session(engine) as session:
        zones = dict(session.execute(select(Tenant.id, Tenant.timezone)).all())

        def users_of(tenant_id: int) -> list[tuple[int, str, str]]:
            # One query per document / filing (audit Issue #4): every member of the tenant.
            return list(
                session.execute(
                    select(User.id, User.email, User.name)
                    .join(TenantUser, TenantUser.user_id == User.id)
                    .where(TenantUser.tenant_id == tenant_id)
                ).all()
            )

        from zoneinfo import ZoneInfo

        for tenant_id in tenant_ids:
            today = NOW.astimezone(ZoneInfo(zones[tenant_id])).date()
            for days in DOCUMENT_WARNING_DAYS:
                documents = session.execute(
                    select(Document.id, Document.title, Document.document_type, Client.name)
                    .join(DocumentVersion, DocumentVersion.id == Document.latest_version_id)
                    .join(Client, Client.id == Document.client_id)
                    .where(
                        Document.tenant_id == tenant_id,
                        DocumentVersion.expiry_date == today + timedelta(days=days),
                    )
                ).all()
                for doc_id, title, doc_type, client_name in documents:
                    items += 1
                    for user_id, email, name in users_of(tenant_id):
                        item = {
                            "title": title,
                            "client_name": client_name,
                            "document_type": doc_type,
                            "expiry_date": today + timedelta(days=days),
                            "days_left": days,
                        }
                        send(
                            "document_expiry_warning",
                            email,
                            name,
                            tenant_id,
                            [item],
                            f"document-expiry-{doc_id}-{user_id}-{days}",
                        )
                        sent += 1
            due_days = [today + timedelta(days=d) for d in FILING_WARNING_DAYS]
            overdue = and_(Filing.due_date < today, Filing.due_date >= today - timedelta(days=7))
            for target in [*due_days, None]:
                condition = overdue if target is None else Filing.due_date == target
                filings = session.execute(
                    select(Filing.id, Filing.filing_type, Filing.due_date, Client.name)
                    .join(Client, Client.id == Filing.client_id)
                    .where(
                        Filing.tenant_id == tenant_id,
                        Filing.status.in_(OPEN_FILING_STATUSES),
                        condition,
                    )
                ).all()
                for filing_id, filing_type, due, client_name in filings:
                    items += 1
                    for user_id, email, name in users_of(tenant_id):
                        item = {
                            "filing_type": filing_type,
                            "client_name": client_name,
                            "due_date": due,
                            "days_until_due": (due - today).days,
                        }
                        send(
                            "filing_reminder",
                            email,
                            name,
                            tenant_id,
                            [item],
                            f"filing-reminder-{filing_id}-{user_id}-{due.isoformat()}",
                        )
                        sent += 1
    return items, sent


def part1(engine: Engine, settings: Settings, tenants: int, baseline_tenants: int) -> list[Run]:
    from gcmc_jobs.sending import queue_email

    with configured(settings, engine=engine) as runtime:
        client = redis.Redis.from_url(settings.broker_url.get_secret_value())
        with Session(engine) as session:
            tenant_ids = list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
            names = dict(session.execute(select(Tenant.id, Tenant.name)).all())

        def send_one(
            kind: str, to: str, name: str, tenant_id: int, items: list[Any], key: str
        ) -> None:
            payload = {
                "tenant_name": names[tenant_id],
                "recipient_name": name,
                "portal_url": settings.portal_url,
                "items": items,
            }
            queue_email(kind, to, payload, tenant_id=tenant_id, dedup_key=key)

        subset = tenant_ids[:baseline_tenants]
        before = queue_length(client, settings.namespace, "gcmc_email")
        started = time.perf_counter()
        with counting(engine) as statements:
            items, sent = audited(engine, subset, send_one)
        base = Run(
            f"audited fan-out ({len(subset)} tenants)",
            time.perf_counter() - started,
            statements[0],
            queue_length(client, settings.namespace, "gcmc_email") - before,
        )
        console.print(f"  audited: {items:,} documents/filings hit a reminder day, {sent:,} sends")

        sender = digests_of(runtime)
        before = queue_length(client, settings.namespace, "gcmc_email")
        started = time.perf_counter()
        with counting(engine) as statements:
            for tenant_id in tenant_ids:
                for job in ("document_expiry_emails", "filing_reminder_emails"):
                    run_for_tenant(engine, job, tenant_id, now=NOW, send_digests=sender)
        ours = Run(
            f"ours ({len(tenant_ids)} tenants)",
            time.perf_counter() - started,
            statements[0],
            queue_length(client, settings.namespace, "gcmc_email") - before,
        )
        return [base, ours]


# -- Part 2 -------------------------------------------------------------------------------


def part2(redis_url: str, namespace: str, count: int) -> list[Run]:
    from dramatiq.brokers.redis import RedisBroker

    runs: list[Run] = []
    plain = RedisBroker(url=redis_url, namespace=f"{namespace}:plain")

    @dramatiq.actor(broker=plain, queue_name="bulk", actor_name="noop")
    def noop(n: int) -> None: ...

    def timed(name: str, action: Callable[[], object]) -> None:
        plain.flush_all()
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        runs.append(Run(name, seconds, 0, queue_length(plain.client, plain.namespace, "bulk")))

    def one_by_one() -> None:
        for n in range(count):
            noop.send(n)

    # The floor writes pre-encoded messages: Redis round trips only, no Python per message
    # beyond the two commands (the reference: ~54,000/s on an idle machine).
    encoded: list[tuple[str, bytes]] = []

    def raw_floor() -> None:
        key = f"{plain.namespace}:bulk"
        for start in range(0, count, 1_000):
            pipe = plain.client.pipeline(transaction=False)
            for rid, data in encoded[start : start + 1_000]:
                pipe.hset(f"{key}.msgs", rid, data)
                pipe.rpush(key, rid)
            pipe.execute()

    timed("send() one by one", one_by_one)
    timed(
        "enqueue_many, dispatch script pipelined",
        lambda: enqueue_many(plain, (noop.message(n) for n in range(count)), strategy="dispatch"),
    )
    timed(
        "enqueue_many, batched (default)",
        lambda: enqueue_many(plain, (noop.message(n) for n in range(count))),
    )
    for n in range(count):
        message = noop.message(n).copy(options={"redis_message_id": str(uuid.uuid4())})
        encoded.append((message.options["redis_message_id"], message.encode()))
    timed("raw pipelined HSET+RPUSH, pre-encoded (floor)", raw_floor)
    plain.flush_all()
    plain.close()

    # With dedup keys, on gcmc-jobs' stack (Deduplication claims in Redis).
    stack_settings = Settings(
        broker_url=redis_url, namespace=f"{namespace}:stack", log_level="WARNING"
    )
    # The stack's stores (dedup claims in Redis); its dead-letter store is never written here.
    stores = Stores.from_settings(stack_settings, engine=lambda: make_engine("sqlite://"))
    stack = build_broker(stack_settings, stores)

    @dramatiq.actor(broker=stack, queue_name="bulk", actor_name="keyed")
    def keyed(n: int) -> None: ...

    def stack_timed(name: str, action: Callable[[], object]) -> None:
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        runs.append(Run(name, seconds, 0, queue_length(stack.client, f"{namespace}:stack", "bulk")))
        stack.flush_all()

    tag = uuid.uuid4().hex[:6]
    stack_timed(
        "gcmc stack + dedup keys: send() one by one",
        lambda: [keyed.send_with_options(args=(n,), dedup_key=f"a{tag}:{n}") for n in range(count)],
    )
    stack_timed(
        "gcmc stack + dedup keys: enqueue_many",
        lambda: enqueue_many(
            stack,
            [keyed.message_with_options(args=(n,), dedup_key=f"b{tag}:{n}") for n in range(count)],
        ),
    )
    stack.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 x 200 clients, 20,000 msgs.")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--clients-per-tenant", type=int, default=1_000)
    parser.add_argument(
        "--baseline-tenants",
        type=int,
        default=10,
        help="Tenants the audited fan-out runs on (it is linear in tenants: "
        "compared per tenant; default 10).",
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if args.quick:
        args.tenants, args.clients_per_tenant, args.messages = 10, 200, 20_000
    baseline_tenants = min(args.baseline_tenants, args.tenants)

    name = f"gcmc_bench_fanout_{uuid.uuid4().hex[:8]}"  # the Redis namespace
    with bench_database(args.server_url, "fanout", pool_size=2) as engine:
        url = engine.url.render_as_string(hide_password=False)
        settings = Settings(
            database_url=url,
            broker_url=args.redis_url,
            namespace=name,
            log_level="WARNING",
            email_url="memory://",
        )
        configure_logging(settings, cache=False)
        client = redis.Redis.from_url(args.redis_url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            result = seed(
                engine, tenants=args.tenants, clients_per_tenant=args.clients_per_tenant, now=NOW
            )
            console.print(
                f"seeded {args.tenants} tenants x {args.clients_per_tenant:,} clients "
                f"({result.total:,} rows) in {time.perf_counter() - started:.1f} s"
            )
            base, ours = part1(engine, settings, args.tenants, baseline_tenants)
            table = Table(title="Daily email jobs (document expiry + filing reminders)")
            for column in (
                "approach",
                "wall s",
                "SQL statements",
                "messages enqueued",
                "s / tenant",
                "statements / tenant",
                "messages / tenant",
            ):
                table.add_column(column, justify="right" if column != "approach" else "left")
            for run, n in ((base, baseline_tenants), (ours, args.tenants)):
                table.add_row(
                    run.name,
                    f"{run.seconds:.2f}",
                    f"{run.statements:,}",
                    f"{run.messages:,}",
                    f"{run.seconds / n:.4f}",
                    f"{run.statements / n:,.1f}",
                    f"{run.messages / n:,.1f}",
                )
            console.print(table)
            speed = (base.seconds / baseline_tenants) / (ours.seconds / args.tenants)
            fewer_statements = (base.statements / baseline_tenants) / (
                ours.statements / args.tenants
            )
            fewer_messages = (base.messages / baseline_tenants) / max(
                ours.messages / args.tenants, 1e-9
            )
            console.print(
                f"per tenant: ours is [bold]{speed:.1f}x[/] faster (target >= 20x), "
                f"{fewer_statements:.0f}x fewer statements, {fewer_messages:.0f}x fewer messages"
            )

            runs = part2(args.redis_url, name, args.messages)
            table = Table(title=f"Enqueueing {args.messages:,} messages on Redis")
            for column in ("how", "wall s", "messages/s", "enqueued", "vs one by one"):
                table.add_column(column, justify="right" if column != "how" else "left")
            for run in runs:
                reference = runs[0] if not run.name.startswith("gcmc") else runs[4]
                table.add_row(
                    run.name,
                    f"{run.seconds:.2f}",
                    f"{run.rate:,.0f}",
                    f"{run.messages:,}",
                    f"{run.rate / reference.rate:.1f}x",
                )
            console.print(table)
        finally:
            keys = list(client.scan_iter(match=f"{name}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])


if __name__ == "__main__":
    main()

"""Benchmark: webhook delivery with pooled connections against a new connection per request,
and the compliance refresh with level-change detection against the refresh without it.

    .venv/bin/python benchmarks/webhooks.py            # 10,000 events, 100 tenants x 1,000 clients
    .venv/bin/python benchmarks/webhooks.py --quick    # 2,000 events, 10 tenants x 200 clients

**Delivery** (target: pooled >= 3x the throughput of a new connection per request). 10,000
events to 100 endpoints through one local receiver (``gcmc_jobs.testing.WebhookReceiver``,
HTTP/1.1 keep-alive, on loopback, in a process of its own). Each endpoint has its own host
name (``hook-N.webhooks.bench``,
resolved to 127.0.0.1 by the client's resolver, so the client keeps one pool per endpoint
as it would for 100 customers' servers). Each event is signed (Standard Webhooks) and POSTed
by ``--threads`` threads (8: a worker's default), in the same run, with:

(a) **new connection per request** — ``WebhookClient(pooled=False)``: ``Connection: close``,
    a TCP handshake per event (what a client without a pool, or ``requests.post``, does);
(b) **pooled** — ``WebhookClient()``: the process's one client, kept-alive connections per
    endpoint (what ``deliver_webhook`` uses).

Loopback has no network latency and no TLS, so the figure is a floor of what pooling saves
against a real endpoint (a TLS handshake costs one to two more round trips).

**Refresh** (target: with detection <= 1.2x the time without it, at 100 tenants x 1,000
clients). A database of its own (``gcmc_bench_webhooks_<random>``, dropped at the end),
seeded with ``gcmc-jobs seed``'s data. Each round refreshes every tenant twice, one tenant
after the other, alternating which goes first (by tenant and round):
``refresh_tenant(..., detect_level_changes=False)`` and with detection (the default); a
round's time for each is the sum over the tenants. Before each refresh (untimed) one client
in ``--change-every`` (100) of the tenant has its stored level set to another one, so the
detecting refresh finds 1 % of the clients changed (a night's worth, as expiries and due
dates move a few clients): it writes their ``compliance.level_changed`` events and the
in-app notifications of their recipients (both emptied before each refresh, untimed).
Pairing the two refreshes tenant by tenant keeps the load of a shared machine, which moves
within seconds, the same for both (whole passes one after the other scattered by ±30 %).
``--change-every 10`` shows a night where 10 % change. Medians of ``--rounds`` rounds (3).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.models import Tenant
from gcmc_jobs.seeding import seed
from gcmc_jobs.services.compliance import refresh_tenant
from gcmc_jobs.services.webhook_endpoints import new_secret
from gcmc_jobs.webhooks.client import WebhookClient
from gcmc_jobs.webhooks.signing import signed_headers

console = Console()
NOW = datetime.now(UTC).replace(microsecond=0)


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


# -- delivery ---------------------------------------------------------------------------------


def _resolver(port: int) -> Callable[..., list[tuple[Any, ...]]]:
    def resolve(host: str, want_port: int, *args: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", want_port))]

    return resolve


def deliver_all(client: WebhookClient, urls: list[str], events: int, threads: int) -> float:
    """POST ``events`` signed events round-robin over ``urls`` from ``threads`` threads;
    returns the seconds it took. Every answer must be a 2xx."""
    secret = new_secret()
    counter = iter(range(events))
    lock = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            body = b'{"type":"bench","timestamp":"2026-12-02T00:00:00Z","data":{"n":%d}}' % n
            headers = signed_headers(secret, f"msg_{n}", int(time.time()), body)
            response = client.post(urls[n % len(urls)], body, headers)
            if not response.ok:
                failures.append(response.error or str(response.status))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} deliveries failed, e.g. {failures[0]}")
    return seconds


RECEIVER = """
import sys
from gcmc_jobs.testing.webhooks import WebhookReceiver
tls = tuple(sys.argv[1:3]) or None
receiver = WebhookReceiver(tls=tls).start()
print(receiver.port, flush=True)
for line in sys.stdin:  # each line asks for the count of connections accepted so far
    print(receiver.connections, flush=True)
"""


class ReceiverProcess:
    """The local receiver in a process of its own (its own interpreter and GIL, as a real
    endpoint's server is), answering 200 with HTTP/1.1 keep-alive."""

    def __init__(self, tls: tuple[str, str] | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, *(tls or ())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.process.stdout is not None
        assert self.process.stdin is not None
        self.port = int(self.process.stdout.readline())

    def connections(self) -> int:
        assert self.process.stdout is not None
        assert self.process.stdin is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for ``*.webhooks.bench`` and its key (openssl), for the https receiver."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=hook.webhooks.bench", "-addext", "subjectAltName=DNS:*.webhooks.bench",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def bench_delivery(
    events: int, endpoints: int, threads: int, tls: tuple[str, str] | None
) -> tuple[float, float, int, int]:
    receiver = ReceiverProcess(tls)
    scheme = "https" if tls else "http"
    ca = tls[0] if tls else None
    try:
        urls = [
            f"{scheme}://hook-{n}.webhooks.bench:{receiver.port}/hooks/{n}"
            for n in range(endpoints)
        ]
        resolver = _resolver(receiver.port)
        fresh = WebhookClient(allow_private=True, pooled=False, resolver=resolver, ca_certs=ca)
        pooled = WebhookClient(
            allow_private=True, pool_maxsize=threads, resolver=resolver, ca_certs=ca
        )
        try:
            deliver_all(pooled, urls[:1], 50, 2)  # warm up the receiver and the code
            before = receiver.connections()
            fresh_s = deliver_all(fresh, urls, events, threads)
            fresh_connections = receiver.connections() - before
            before = receiver.connections()
            pooled_s = deliver_all(pooled, urls, events, threads)
            pooled_connections = receiver.connections() - before
        finally:
            fresh.close()
            pooled.close()
    finally:
        receiver.stop()
    return fresh_s, pooled_s, fresh_connections, pooled_connections


# -- refresh ----------------------------------------------------------------------------------


def perturb(engine: Engine, tenant_id: int, every: int) -> None:
    """Set one client in ``every`` of the tenant to a level other than its own, and forget
    the tenant's earlier changes."""
    with engine.begin() as connection:
        tenant = {"tenant_id": tenant_id, "every": every}
        connection.execute(text("DELETE FROM webhook_events WHERE tenant_id = :tenant_id"), tenant)
        connection.execute(text("DELETE FROM notifications WHERE tenant_id = :tenant_id"), tenant)
        connection.execute(
            text(
                "UPDATE compliance_scores SET level = CASE level WHEN 'low' THEN 'high' "
                "ELSE 'low' END WHERE tenant_id = :tenant_id AND client_id % :every = 0"
            ),
            tenant,
        )


def refresh_round(
    engine: Engine, tenant_ids: list[int], every: int, round_number: int
) -> tuple[float, float, int, int]:
    """Each tenant refreshed without and with detection (the order alternating), each after
    its own perturbation; returns the seconds of each mode summed over the tenants, and the
    changes the detecting refreshes found and the in-app notifications they made."""
    seconds = {False: 0.0, True: 0.0}
    changes = notified = 0
    for n, tenant_id in enumerate(tenant_ids):
        for detect in (False, True) if (n + round_number) % 2 == 0 else (True, False):
            perturb(engine, tenant_id, every)
            started = time.perf_counter()
            with Session(engine) as session, session.begin():
                result = refresh_tenant(session, tenant_id, now=NOW, detect_level_changes=detect)
            seconds[detect] += time.perf_counter() - started
            changes += result.level_changes
            if detect:
                with engine.connect() as connection:
                    notified += connection.execute(
                        text("SELECT count(*) FROM notifications WHERE tenant_id = :tenant_id"),
                        {"tenant_id": tenant_id},
                    ).scalar_one()
    return seconds[False], seconds[True], changes, notified


def refresh_all(engine: Engine, tenant_ids: list[int], detect: bool) -> None:
    for tenant_id in tenant_ids:
        with Session(engine) as session, session.begin():
            refresh_tenant(session, tenant_id, now=NOW, detect_level_changes=detect)


def bench_refresh(
    server_url: str, tenants: int, per_tenant: int, rounds: int, every: int
) -> tuple[list[float], list[float], int, int]:
    with bench_database(server_url, "webhooks") as engine:
        upgrade(engine)
        console.print(f"seeding {tenants} tenants x {per_tenant:,} clients …")
        seeded = seed(engine, tenants=tenants, clients_per_tenant=per_tenant, seed=0, now=NOW)
        console.print(f"seeded {seeded.total:,} rows; {loadavg()}")
        with Session(engine) as session:
            tenant_ids = list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
        refresh_all(engine, tenant_ids, detect=False)  # every client scored once: a "before"
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        plain: list[float] = []
        detecting: list[float] = []
        changes = notified = 0
        for n in range(rounds):
            without, with_detection, changes, notified = refresh_round(engine, tenant_ids, every, n)
            plain.append(without)
            detecting.append(with_detection)
        return plain, detecting, changes, notified


def delivery_report(
    label: str, tls: tuple[str, str] | None, events: int, endpoints: int, threads: int
) -> bool:
    console.print(f"delivery ({label}): {events:,} events to {endpoints} endpoints; {loadavg()}")
    fresh_s, pooled_s, fresh_conn, pooled_conn = bench_delivery(events, endpoints, threads, tls)
    table = Table(title=f"Webhook delivery over {label}, {threads} threads, loopback receiver")
    for column in ("client", "seconds", "events/s", "connections opened"):
        table.add_column(column, justify="left" if column == "client" else "right")
    table.add_row("(a) new connection per request", f"{fresh_s:.2f}",
                  f"{events / fresh_s:,.0f}", f"{fresh_conn:,}")  # fmt: skip
    table.add_row("(b) pooled (gcmc-jobs)", f"{pooled_s:.2f}",
                  f"{events / pooled_s:,.0f}", f"{pooled_conn:,}")  # fmt: skip
    console.print(table)
    ratio = fresh_s / pooled_s
    met = ratio >= 3
    console.print(
        f"{label}: pooled vs new connection per request: [bold]{ratio:.2f}x[/] the throughput "
        f"(target >= 3x) {'[green]OK' if met else '[red]MISSED'}[/]; {loadavg()}"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 events; 10 x 200 clients")
    parser.add_argument("--events", type=int, default=None, help="default 10,000")
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--tenants", type=int, default=None, help="default 100 (10 quick)")
    parser.add_argument("--clients-per-tenant", type=int, default=None, help="default 1,000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--change-every",
        type=int,
        default=100,
        help="one client in this many changes level before each pass (100: 1 %%)",
    )
    parser.add_argument("--skip-refresh", action="store_true")
    parser.add_argument("--skip-delivery", action="store_true")
    parser.add_argument(
        "--server-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    args = parser.parse_args(argv)
    events = args.events or (2_000 if args.quick else 10_000)
    tenants = args.tenants or (10 if args.quick else 100)
    per_tenant = args.clients_per_tenant or (200 if args.quick else 1_000)
    ok = True

    if not args.skip_delivery:
        with tempfile.TemporaryDirectory() as directory:
            tls = self_signed(Path(directory))
            for label, mode in (("http", None), ("https", tls)):
                ok &= delivery_report(label, mode, events, args.endpoints, args.threads)
    if not args.skip_refresh:
        plain, detecting, changes, notified = bench_refresh(
            args.server_url, tenants, per_tenant, args.rounds, args.change_every
        )
        table = Table(title=f"Compliance refresh, {tenants} tenants x {per_tenant:,} clients")
        for column in ("refresh", "median s", "all rounds s"):
            table.add_column(column, justify="left" if column == "refresh" else "right")
        table.add_row("without detection", f"{statistics.median(plain):.2f}",
                      " ".join(f"{s:.2f}" for s in plain))  # fmt: skip
        table.add_row("with level-change detection", f"{statistics.median(detecting):.2f}",
                      " ".join(f"{s:.2f}" for s in detecting))  # fmt: skip
        console.print(table)
        ratio = statistics.median(detecting) / statistics.median(plain)
        met = ratio <= 1.2
        ok &= met
        console.print(
            f"detection found {changes:,} level changes per round ({notified:,} in-app "
            f"notifications); with vs without: [bold]{ratio:.3f}x[/] the time (target <= 1.2x) "
            f"{'[green]OK' if met else '[red]MISSED'}[/]; {loadavg()}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark of email delivery (issue 3). Run: ``.venv/bin/python benchmarks/email_delivery.py``.

1. **Connection reuse.** Render + build + send N emails (default 2,000) to a local aiosmtpd
   sink running in its own process: a new SMTP connection per email (what a naive sender
   does) vs :class:`~gcmc_jobs.email.transports.SmtpTransport`'s reused connection.
   Reports emails/s of each and the ratio.
2. **Critical path.** 10,000 bulk emails are queued on Redis, two worker processes
   (``dramatiq gcmc_jobs.worker --processes 2``) start draining them into the sink; once
   they are under way a ``password_reset`` is sent, and the time until the sink receives
   it is measured, with how much of the bulk was still queued. Target: under 2 s.

Uses PostgreSQL and Redis on loopback: a database ``gcmc_bench_email_<random>`` (dropped at
the end) and a Redis namespace of its own (deleted at the end).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.email import Welcome, render
from gcmc_jobs.email.mime import build_mime, to_bytes
from gcmc_jobs.email.transports import SmtpTransport
from gcmc_jobs.testing import WorkerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get(
    "GCMC_JOBS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SENDER = "GCMC <no-reply@gcmc.example>"


class Sink:
    """The sink process (benchmarks/_smtp_sink.py: the packaged SmtpSink in its own process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.state = Path(tempfile.mkdtemp(prefix="gcmc_bench_sink_"))
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("_smtp_sink.py")),
                str(self.port),
                str(self.state),
            ],
        )
        while not (self.state / "ready").exists():
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    def count(self) -> int:
        try:
            return int((self.state / "count").read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def resets(self) -> list[float]:
        try:
            return [float(line) for line in (self.state / "resets").read_text().split()]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def welcome(i: int) -> Welcome:
    return Welcome(
        tenant_name="Acme CPA",
        client_name=f"Client {i}",
        portal_url="https://portal.gcmc.example/acme",
        support_email="support@acme.example",
    )


def _messages(start: int, count: int, *, build: bool) -> list[bytes] | None:
    if not build:
        return None
    return [
        to_bytes(build_mime(render("welcome", welcome(i)), to=f"c{i}@example.com", sender=SENDER))
        for i in range(start, start + count)
    ]


def one_connection_per_email(
    sink: Sink, start: int, count: int, prebuilt: list[bytes] | None
) -> float:
    """Seconds to (render, build and) send ``count`` emails, one new connection each."""
    began = time.perf_counter()
    for k, i in enumerate(range(start, start + count)):
        data = (
            prebuilt[k]
            if prebuilt
            else to_bytes(
                build_mime(render("welcome", welcome(i)), to=f"c{i}@example.com", sender=SENDER)
            )
        )
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as connection:
            connection.sendmail("no-reply@gcmc.example", [f"c{i}@example.com"], data)
    return time.perf_counter() - began


def reused_connection(
    transport: SmtpTransport, start: int, count: int, prebuilt: list[bytes] | None
) -> float:
    """Seconds to (render, build and) send ``count`` emails on the transport's connection."""
    began = time.perf_counter()
    for k, i in enumerate(range(start, start + count)):
        if prebuilt:
            to = [f"c{i}@example.com"]
            transport._send_once("no-reply@gcmc.example", to, prebuilt[k], utf8=False)
        else:
            message = build_mime(
                render("welcome", welcome(i)), to=f"c{i}@example.com", sender=SENDER
            )
            transport.send(message)
    return time.perf_counter() - began


def connection_reuse(n: int) -> None:
    """Alternate batches of 100 of each way, so a machine's changing load hits both alike."""
    sink = Sink()
    transport = SmtpTransport(sink.url)
    results: dict[bool, tuple[float, float]] = {}
    try:
        for build in (True, False):
            naive = ours = 0.0
            for start in range(0, n, 100):
                prebuilt = _messages(start, 100, build=not build)
                naive += one_connection_per_email(sink, start, 100, prebuilt)
                ours += reused_connection(transport, start, 100, prebuilt)
            results[build] = (n / naive, n / ours)
    finally:
        transport.close()
        sink.stop()
    print(f"1. {n:,} emails to a local aiosmtpd sink (its own process), batches alternated")
    for build, label in ((True, "render + build + send"), (False, "send only (prebuilt)")):
        naive_rate, ours_rate = results[build]
        print(
            f"   {label:22}: one connection per email {naive_rate:7,.0f}/s, "
            f"reused connection (ours) {ours_rate:7,.0f}/s, ratio {ours_rate / naive_rate:.2f}x"
        )


def critical_path(bulk: int, processes: int, threads: int) -> None:
    namespace = f"gcmc_bench_email_{uuid.uuid4().hex[:8]}"
    with bench_database(PG_SERVER, "email") as engine:
        database_url = engine.url.render_as_string(hide_password=False)
        upgrade(engine)
        engine.dispose()
        sink = Sink()
        env = {
            "GCMC_JOBS_DATABASE_URL": database_url,
            "GCMC_JOBS_BROKER_URL": REDIS_URL,
            "GCMC_JOBS_NAMESPACE": namespace,
            "GCMC_JOBS_EMAIL_URL": sink.url,
            "GCMC_JOBS_LOG_LEVEL": "WARNING",
            "GCMC_JOBS_LOG_FORMAT": "json",
            "GCMC_JOBS_RATE_LIMIT": "1000",
        }
        workers = WorkerProcess.dramatiq(
            env=env,
            processes=processes,
            threads=threads,
            log_path=Path(sink.state) / "workers.log",
            cwd=ROOT,
        )
        try:
            import gcmc_jobs
            from gcmc_jobs.brokers.bulk import enqueue_many
            from gcmc_jobs.sending import build_message, queue_password_reset_email
            from gcmc_jobs.settings import Settings

            settings = Settings(
                database_url=database_url,
                broker_url=REDIS_URL,
                namespace=namespace,
                email_url=sink.url,
                log_level="WARNING",
            )
            from gcmc_jobs.logging import configure_logging

            configure_logging(settings)
            runtime = gcmc_jobs.configure(settings)
            started = time.perf_counter()
            messages = [
                build_message("welcome", f"bulk{i}@example.com", welcome(i), tenant_id=None)
                for i in range(bulk)
            ]
            built = time.perf_counter() - started
            result = enqueue_many(runtime.broker, messages)
            enqueued = time.perf_counter() - started
            print(
                f"2. {len(result.enqueued):,} bulk emails queued on Redis "
                f"(built in {built:.2f} s, built + enqueued in {enqueued:.2f} s)"
            )
            workers.start()
            drain_started = time.perf_counter()
            while sink.count() < 500:  # the bulk is under way
                time.sleep(0.01)
            before = sink.count()
            sent_at = time.time()
            queue_password_reset_email(
                "urgent@example.com",
                {
                    "tenant_name": "Acme CPA",
                    "user_name": "Sam",
                    "reset_url": f"https://portal.gcmc.example/reset?token={uuid.uuid4().hex}",
                },
            )
            while not sink.resets():
                time.sleep(0.005)
            latency = sink.resets()[0] - sent_at
            at_arrival = sink.count()
            deadline = time.time() + 600
            while sink.count() < bulk + 1 and time.time() < deadline:
                time.sleep(0.1)
            drained = time.perf_counter() - drain_started
            delivered = sink.count() - 1
            print(
                f"   workers: {processes} processes x {threads} threads "
                f"(dramatiq gcmc_jobs.worker), email_url -> the sink"
            )
            print(
                f"   password_reset sent after {before:,} bulk emails were delivered, "
                f"arrived in {latency * 1000:,.0f} ms"
            )
            print(f"   bulk emails still undelivered when it arrived: {bulk - at_arrival + 1:,}")
            print(
                f"   bulk drained: {delivered:,} emails in {drained:.1f} s "
                f"({delivered / drained:,.0f} emails/s through the actor, PostgreSQL email_log)"
            )
            print(f"   target < 2 s: {'MET' if latency < 2 else 'MISSED'}")
        finally:
            workers.close()  # SIGTERM, then SIGKILL of what remains
            sink.stop()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            from gcmc_jobs.runtime import installed

            configured_runtime = installed()
            if configured_runtime is not None:
                configured_runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2_000, help="emails for part 1 (2,000)")
    parser.add_argument("--bulk", type=int, default=10_000, help="bulk emails, part 2 (10,000)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per process (8)")
    parser.add_argument("--only", choices=["reuse", "critical"], help="run one part")
    args = parser.parse_args()
    if args.only in (None, "reuse"):
        connection_reuse(args.n)
    if args.only in (None, "critical"):
        critical_path(args.bulk, args.processes, args.threads)


if __name__ == "__main__":
    main()

"""Benchmark of campaign throughput (issue 13, item 6). Run:
``.venv/bin/python benchmarks/campaigns.py [--recipients 5000] [--processes 2 --threads 4]``.

A tenant with N active clients; real ``dramatiq gcmc_jobs.worker`` processes deliver to a
local aiosmtpd sink running in its own process (``benchmarks/_smtp_sink.py``), over
PostgreSQL and Redis on loopback. In the same run, with the same workers:

1. **Transactional baseline**: N ``custom`` emails built with
   :func:`gcmc_jobs.sending.build_message` and queued with
   :func:`~gcmc_jobs.brokers.bulk.enqueue_many` (the daily digests' path): emails per
   second from the first enqueue to the last arrival at the sink.
2. **Campaign**: a campaign to the same N clients with its rate set high (100,000/s), so
   the pacing is not what limits it: emails per second from
   :func:`gcmc_jobs.ops.campaigns.create_campaign` (``start=True``: the one-statement
   expansion included) to the last arrival. Each campaign email also renders the operator's
   templates, signs an unsubscribe token, checks the campaign's status and the opt-outs, and
   records its recipient row.

Prints both rates and the ratio (campaign / transactional), with the machine's load. Uses a
database ``gcmc_bench_campaigns_<random>`` (dropped at the end) and a Redis namespace of its
own (deleted at the end).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import redis
from sqlalchemy import text

from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.testing import WorkerProcess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _database import bench_database
from email_delivery import Sink  # the sibling benchmark's sink process

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get(
    "GCMC_JOBS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _wait_for(sink: Sink, count: int, timeout_s: float = 900) -> float:
    """Block until the sink has ``count`` messages; the perf_counter at that moment."""
    deadline = time.time() + timeout_s
    while sink.count() < count:
        if time.time() > deadline:
            raise SystemExit(f"timed out: the sink has {sink.count():,} of {count:,}")
        time.sleep(0.01)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    n = args.recipients

    namespace = f"gcmc_bench_campaigns_{uuid.uuid4().hex[:8]}"
    with bench_database(PG_SERVER, "campaigns") as engine:
        database_url = engine.url.render_as_string(hide_password=False)
        upgrade(engine)
        with engine.begin() as connection:
            tenant_id = connection.execute(
                text("INSERT INTO tenants (name) VALUES ('Acme CPA') RETURNING id")
            ).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO clients (tenant_id, name, email, is_active) "
                    "SELECT :t, 'Client ' || i, 'client' || i || '@example.com', true "
                    "FROM generate_series(1, :n) AS i"
                ),
                {"t": tenant_id, "n": n},
            )
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
            "GCMC_JOBS_CAMPAIGN_SECRET": "benchmark-campaign-secret-0123",
            "GCMC_JOBS_CAMPAIGN_BATCH_SIZE": "500",
        }
        workers = WorkerProcess.dramatiq(
            env=env,
            processes=args.processes,
            threads=args.threads,
            log_path=Path(sink.state) / "workers.log",
            cwd=ROOT,
        )
        try:
            import gcmc_jobs
            from gcmc_jobs.brokers.bulk import enqueue_many
            from gcmc_jobs.email import Custom
            from gcmc_jobs.logging import configure_logging
            from gcmc_jobs.ops.campaigns import create_campaign, get_campaign
            from gcmc_jobs.sending import build_message
            from gcmc_jobs.settings import Settings

            settings = Settings(**{k[len("GCMC_JOBS_") :].lower(): v for k, v in env.items()})
            configure_logging(settings)
            runtime = gcmc_jobs.configure(settings)
            workers.start()
            # Warm-up (and the workers' readiness, which WARNING-level logs do not show).
            warm = [
                build_message(
                    "custom",
                    f"warm{i}@example.com",
                    Custom(tenant_name="Acme CPA", subject="Warm-up", body="."),
                )
                for i in range(20)
            ]
            enqueue_many(runtime.broker, warm)
            _wait_for(sink, len(warm))
            offset = len(warm)
            load_before = os.getloadavg()

            # 1. The transactional baseline: the same number of emails, bulk-enqueued.
            began = time.perf_counter()
            messages = [
                build_message(
                    "custom",
                    f"client{i}@example.com",
                    Custom(tenant_name="Acme CPA", subject="Office move", body=f"Dear Client {i}"),
                    tenant_id=tenant_id,
                )
                for i in range(1, n + 1)
            ]
            enqueue_many(runtime.broker, messages)
            baseline_s = _wait_for(sink, offset + n) - began

            # 2. The campaign, its rate set high.
            began = time.perf_counter()
            campaign = create_campaign(
                runtime,
                tenant_id=tenant_id,
                name="Office move",
                subject="{{ tenant_name }} is moving",
                body="Dear {{ recipient_name }},\n\nOur office moves on Monday.",
                segment="clients",
                created_by="benchmark",
                rate_per_second=100_000,
                start=True,
            )
            expanded_s = time.perf_counter() - began
            campaign_s = _wait_for(sink, offset + 2 * n) - began
            load_after = os.getloadavg()
            progress = get_campaign(runtime, campaign.id).progress
            baseline_rate, campaign_rate = n / baseline_s, n / campaign_s
            print(
                f"campaigns: {n:,} recipients, workers {args.processes} processes x "
                f"{args.threads} threads, aiosmtpd sink in its own process, PostgreSQL + Redis"
            )
            print(
                f"  transactional (custom, enqueue_many): {baseline_rate:7,.0f} emails/s "
                f"({baseline_s:.1f} s)"
            )
            print(
                f"  campaign (rate 100,000/s)           : {campaign_rate:7,.0f} emails/s "
                f"({campaign_s:.1f} s; create + expand + start {expanded_s * 1000:,.0f} ms)"
            )
            print(f"  ratio campaign / transactional: {campaign_rate / baseline_rate:.2f}")
            print(f"  campaign progress: {progress.as_dict()}")
            print(
                "  load average (1, 5, 15 min) before: "
                + ", ".join(f"{x:.2f}" for x in load_before)
                + "; after: "
                + ", ".join(f"{x:.2f}" for x in load_after)
            )
        finally:
            workers.close()
            sink.stop()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])


if __name__ == "__main__":
    main()

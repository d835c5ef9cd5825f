"""Benchmark of a mail server outage, breaker off against on (issue 13 item 4).

Run: ``.venv/bin/python benchmarks/smtp_outage.py`` (about ten minutes with the defaults).

The scenario of ``tests/faults/test_smtp_outage_breaker.py`` at full length and with the
production retry policy and breaker settings: a worker process
(``dramatiq gcmc_jobs.worker``, 1 process x 4 threads) on Redis and PostgreSQL, a real
aiosmtpd sink (:class:`~gcmc_jobs.testing.SmtpSink`) that goes down
(:meth:`~gcmc_jobs.testing.SmtpSink.go_down`: every connection is answered 421 and closed,
and counted) as the emails are sent, stays down ``--outage-s`` (180) seconds, then comes
back. Run twice in the same invocation: ``GCMC_JOBS_MAIL_BREAKER=false`` (today's
behaviour: every email spends its retries) and ``true`` (the defaults: 5 failures open it,
probes from 5 s doubling to 60 s). For each it prints the SMTP attempts the sink saw
(connections refused while down, sessions while up), deliveries, duplicates, dead letters
and when the last email arrived after the server came back, then the ratio of attempts.

Uses PostgreSQL and Redis on loopback: a database ``gcmc_bench_outage_<random>`` per run
(dropped at the end) and a Redis namespace of its own (deleted at the end).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._database import bench_database
from gcmc_jobs import queue_names as queues
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.testing import SmtpSink, WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get(
    "GCMC_JOBS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GCMC_JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Outcome:
    """What one run saw."""

    breaker: bool
    refused: int
    sessions: int
    deliveries: int
    duplicates: int
    dead_letters: int
    delivered_keys: int
    actor_attempts: int
    tail_s: float | None

    @property
    def attempts(self) -> int:
        return self.refused + self.sessions


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _drained(client: redis.Redis, namespace: str) -> bool:
    for queue in (queues.EMAIL, queues.EMAIL_CRITICAL):
        keys = [f"{namespace}:{queue}.msgs", f"{namespace}:{queue}.DQ.msgs"]
        if any(client.hlen(key) for key in keys) or client.llen(f"{namespace}:{queue}"):
            return False
    return True


def run(*, breaker: bool, emails: int, resets: int, outage_s: float, threads: int) -> Outcome:
    from gcmc_jobs.bootstrap import configured
    from gcmc_jobs.sending import queue_email, queue_password_reset_email
    from gcmc_jobs.settings import Settings

    namespace = f"gcmc_bench_outage_{uuid.uuid4().hex[:8]}"
    with bench_database(PG_SERVER, "outage") as engine:
        database_url = engine.url.render_as_string(hide_password=False)
        upgrade(engine)
        sink = SmtpSink()
        sink.go_down()
        env = {
            "GCMC_JOBS_DATABASE_URL": database_url,
            "GCMC_JOBS_BROKER_URL": REDIS_URL,
            "GCMC_JOBS_NAMESPACE": namespace,
            "GCMC_JOBS_EMAIL_URL": sink.url,
            "GCMC_JOBS_LOG_LEVEL": "WARNING",
            "GCMC_JOBS_LOG_FORMAT": "json",
            "GCMC_JOBS_MAIL_BREAKER": "true" if breaker else "false",
        }
        logs = Path(tempfile.mkdtemp(prefix="gcmc_bench_outage_"))
        workers = WorkerProcess.dramatiq(
            env=env, threads=threads, log_path=logs / "workers.log", cwd=ROOT
        )
        client = redis.Redis.from_url(REDIS_URL)
        keys = [f"outage-{n}" for n in range(emails)] + [f"outage-reset-{n}" for n in range(resets)]
        try:
            settings = Settings(**{k.removeprefix("GCMC_JOBS_").lower(): v for k, v in env.items()})
            with configured(settings):
                workers.start()
                for n in range(emails):
                    queue_email(
                        "custom",
                        f"reader{n}@example.com",
                        {
                            "tenant_name": "Acme CPA",
                            "subject": f"Notice {n}",
                            "body": f"Message {n} of the outage benchmark.",
                            "recipient_name": f"Person {n}",
                        },
                        dedup_key=keys[n],
                    )
                for n in range(resets):
                    queue_password_reset_email(
                        f"user{n}@example.com",
                        {
                            "tenant_name": "Acme CPA",
                            "user_name": f"User {n}",
                            "reset_url": f"https://portal.example/reset?token=t{n}",
                        },
                        dedup_key=keys[emails + n],
                    )
                label = "on" if breaker else "off"
                down = f"the server is down {outage_s:.0f} s"
                print(f"   breaker {label}: {len(keys)} emails sent; {down}")
                time.sleep(outage_s)
                refused = sink.refused_connections
                sink.start()
                back = time.time()
                deadline = back + 1_800
                while not _drained(client, namespace) and time.time() < deadline:
                    time.sleep(0.5)
                deliveries = sink.deliveries
                per_key = sink.per_dedup_key()
                with engine.connect() as connection:
                    dead = int(connection.scalar(text("SELECT count(*) FROM dead_letters")) or 0)
                    attempts = int(
                        connection.scalar(text("SELECT coalesce(sum(attempts), 0) FROM email_log"))
                        or 0
                    )
                last = max((d.received_at for d in deliveries), default=None)
                return Outcome(
                    breaker=breaker,
                    refused=refused,
                    sessions=sink.connections,
                    deliveries=len(deliveries),
                    duplicates=sum(n - 1 for n in per_key.values()),
                    dead_letters=dead,
                    delivered_keys=len(set(per_key) & set(keys)),
                    actor_attempts=attempts,
                    tail_s=None if last is None else last - back,
                )
        finally:
            workers.close()
            sink.stop()
            for key in list(client.scan_iter(match=f"{namespace}*", count=1000)):
                client.delete(key)


def report(o: Outcome, total: int) -> None:
    label = "on " if o.breaker else "off"
    tail = "-" if o.tail_s is None else f"{o.tail_s:.1f} s"
    print(
        f"   breaker {label}: SMTP attempts {o.attempts:,} ({o.refused:,} connections refused "
        f"while down + {o.sessions:,} sessions while up), actor attempts {o.actor_attempts:,}, "
        f"delivered {o.delivered_keys}/{total}, deliveries {o.deliveries}, duplicates "
        f"{o.duplicates}, dead letters {o.dead_letters}, last delivery {tail} after recovery"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=20, help="bulk emails (20)")
    parser.add_argument("--resets", type=int, default=3, help="password resets (3)")
    parser.add_argument("--outage-s", type=float, default=180, help="outage, seconds (180)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads (4)")
    parser.add_argument("--only", choices=["off", "on"], help="run one of the two")
    args = parser.parse_args()
    logging.getLogger("gcmc_jobs").setLevel(logging.WARNING)
    total = args.emails + args.resets
    print(f"load before: {load()}")
    outcomes = []
    for breaker in (False, True):
        if args.only is not None and args.only != ("on" if breaker else "off"):
            continue
        outcome = run(
            breaker=breaker,
            emails=args.emails,
            resets=args.resets,
            outage_s=args.outage_s,
            threads=args.threads,
        )
        report(outcome, total)
        outcomes.append(outcome)
    print(f"load after: {load()}")
    if len(outcomes) == 2 and outcomes[1].attempts:
        off, on = outcomes
        print(
            f"SMTP attempts, breaker off / on: {off.attempts:,} / {on.attempts:,} = "
            f"{off.attempts / on.attempts:.1f}x fewer with the breaker; dead letters "
            f"{off.dead_letters} / {on.dead_letters}"
        )


if __name__ == "__main__":
    main()

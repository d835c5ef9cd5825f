"""Scenario 4: the mail server is down, then comes back.

Each attempt of the email actor tries the server a few times (tenacity, inside the attempt),
then gives the message back to Dramatiq's retries, which wait with exponential backoff and
jitter. The ``email_log`` row keeps the error and counts the attempts; once the server is
back the email goes out, once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, text

from gcmc_jobs.runtime import Runtime
from gcmc_jobs.sending import queue_email
from gcmc_jobs.testing import SmtpSink
from tests.faults.data import custom_email, email_statuses
from tests.faults.logs import dead_lettered, queue_is_drained
from tests.support import RedisServer, WorkerProcess, wait_until

EMAILS = 20


def test_emails_sent_while_the_mail_server_is_down_are_delivered_once_when_it_returns(
    fault_db: tuple[str, Engine],
    redis_server: RedisServer,
    smtp_server: SmtpSink,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given the mail server is down
    _, engine = fault_db
    client = redis_server.client()
    smtp_server.stop()
    # Today's retry path, without the mail circuit breaker (test_smtp_outage_breaker.py has
    # the same outage with it)
    workers = start_workers(processes=1, threads=4, env={"GCMC_JOBS_MAIL_BREAKER": "false"})
    keys = [f"faults-smtp-{n}" for n in range(EMAILS)]

    # When 20 emails are sent and every one of them has failed an attempt
    for n, key in enumerate(keys):
        queue_email(
            "custom", f"reader{n}@example.com", custom_email(n, prefix="smtp"), dedup_key=key
        )

    def errors_noted() -> bool:
        with engine.connect() as connection:
            return (
                connection.scalar(
                    text(
                        "SELECT count(*) FROM email_log "
                        "WHERE error IS NOT NULL AND status = 'queued'"
                    )
                )
                == EMAILS
            )

    wait_until(
        errors_noted, timeout_s=60, what="every email to fail once", diagnose=workers.log_tail
    )
    assert smtp_server.count() == 0

    # And the server comes back on the same address
    smtp_server.start()

    # Then every email is delivered, exactly once, after at least one retry
    wait_until(
        lambda: smtp_server.count() >= EMAILS and queue_is_drained(client, namespace, "gcmc_email"),
        timeout_s=90,
        what="every email to be delivered after the outage",
        diagnose=workers.log_tail,
    )
    per_key = smtp_server.per_dedup_key()
    with engine.connect() as connection:
        attempts = dict(connection.execute(text("SELECT dedup_key, attempts FROM email_log")).all())
    duplicates = sum(n - 1 for n in per_key.values())
    print(
        f"\n[scenario 4] sent={EMAILS} delivered={len(per_key)} duplicates={duplicates} "
        f"attempts_per_email={sorted(set(attempts.values()))} "
        f"dead_lettered={dead_lettered(client, namespace, 'gcmc_email')}"
    )
    assert set(per_key) == set(keys)
    assert duplicates == 0
    assert email_statuses(engine) == dict.fromkeys(keys, "sent")
    assert all(attempts[key] >= 2 for key in keys), attempts
    assert dead_lettered(client, namespace, "gcmc_email") == 0

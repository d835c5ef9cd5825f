"""Scenario 4b: the mail server goes down and comes back, with the mail circuit breaker on.

The same outage as scenario 4 (``test_smtp_outage.py``, the breaker off there), but the
server is down the way the sink can count (:meth:`SmtpSink.go_down`: each connection is
answered 421 and closed). A few failed deliveries open the breaker; from then on the email
queues hold their messages (no attempt, no retry consumed) while one worker probes the
server with a doubling backoff; when it answers, password resets go first, then the rest.
The thresholds and backoffs are scaled down by settings so the outage lasts seconds here;
``benchmarks/smtp_outage.py`` runs it for three minutes, breaker off against on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from gcmc_jobs import queue_names as queues
from gcmc_jobs.middleware.stores.mail_circuit import RedisCircuitStore
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.sending import queue_email, queue_password_reset_email
from gcmc_jobs.testing import SmtpSink
from tests.faults.data import custom_email, email_statuses
from tests.faults.logs import dead_lettered, queue_is_drained
from tests.support import RedisServer, WorkerProcess, wait_until

EMAILS = 20
RESETS = 3
THREADS = 4
THRESHOLD = 3
#: Tries of one delivery within one attempt (the default ``email_retry_attempts``).
TRIES = 3
#: How long the server stays down once the breaker has opened, s.
OUTAGE_S = 8

BREAKER = {
    "GCMC_JOBS_MAIL_BREAKER": "true",
    "GCMC_JOBS_MAIL_BREAKER_FAILURES": str(THRESHOLD),
    "GCMC_JOBS_MAIL_BREAKER_PROBE_MIN_MS": "500",
    "GCMC_JOBS_MAIL_BREAKER_PROBE_MAX_MS": "2000",
    "GCMC_JOBS_MAIL_BREAKER_HOLD_MS": "1000",
    "GCMC_JOBS_MAIL_BREAKER_CRITICAL_HOLD_MS": "200",
    "GCMC_JOBS_MAIL_BREAKER_HALF_OPEN_MS": "3000",
    "GCMC_JOBS_MAIL_BREAKER_REFRESH_MS": "200",
}


def test_a_mail_server_outage_holds_email_and_delivers_all_once_when_it_returns(
    fault_db: tuple[str, Engine],
    redis_server: RedisServer,
    smtp_server: SmtpSink,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    # Given the mail server is down and workers run with the breaker on
    _, engine = fault_db
    client = redis_server.client()
    circuit = RedisCircuitStore(client, namespace=namespace)
    smtp_server.go_down()
    workers = start_workers(processes=1, threads=THREADS, env=BREAKER)
    keys = [f"breaker-{n}" for n in range(EMAILS)]
    reset_keys = [f"breaker-reset-{n}" for n in range(RESETS)]

    # When emails and password resets are sent during the outage
    for n, key in enumerate(keys):
        queue_email(
            "custom", f"reader{n}@example.com", custom_email(n, prefix="brk"), dedup_key=key
        )
    for n, key in enumerate(reset_keys):
        queue_password_reset_email(
            f"user{n}@example.com",
            {
                "tenant_name": "Acme CPA",
                "user_name": f"User {n}",
                "reset_url": f"https://portal.example/reset?token=t{n}",
            },
            dedup_key=key,
        )

    # Then a few failures open the breaker, and the server is left down for a while
    wait_until(
        lambda: circuit.state().state == "open",
        timeout_s=60,
        what="the breaker to open",
        diagnose=workers.log_tail,
    )
    time.sleep(OUTAGE_S)  # the outage goes on: held email, probes with backoff
    during = circuit.state()
    refused = smtp_server.refused_connections
    assert smtp_server.count() == 0

    # When the server comes back on the same address
    smtp_server.start()

    # Then every email is delivered exactly once, password resets first
    wait_until(
        lambda: (
            smtp_server.count() >= EMAILS + RESETS
            and queue_is_drained(client, namespace, queues.EMAIL)
            and queue_is_drained(client, namespace, queues.EMAIL_CRITICAL)
        ),
        timeout_s=60,
        what="every email to be delivered after the outage",
        diagnose=workers.log_tail,
    )
    per_key = smtp_server.per_dedup_key()
    duplicates = sum(n - 1 for n in per_key.values())
    with engine.connect() as connection:
        attempts = dict(connection.execute(text("SELECT dedup_key, attempts FROM email_log")).all())
        stored_dead = connection.scalar(text("SELECT count(*) FROM dead_letters"))
    broker_dead = sum(dead_lettered(client, namespace, q) for q in queues.ALL)
    order = [d.dedup_key for d in smtp_server.deliveries]
    print(
        f"\n[scenario 4b] sent={EMAILS + RESETS} delivered={len(per_key)} "
        f"duplicates={duplicates} refused_connections={refused} probes={during.probes} "
        f"attempts_per_email={sorted(set(attempts.values()))} dead={stored_dead + broker_dead}"
    )
    assert set(per_key) == {*keys, *reset_keys}
    assert duplicates == 0
    assert email_statuses(engine) == dict.fromkeys([*keys, *reset_keys], "sent")
    assert stored_dead == 0
    assert broker_dead == 0
    # The password resets went out before any other email
    assert max(order.index(k) for k in reset_keys) < min(order.index(k) for k in keys), order
    # Far fewer attempts than without the breaker, where each of the 23 emails' first
    # attempt alone tries TRIES times: here only the attempts that ran before the breaker
    # opened (at most THRESHOLD + the THREADS in flight) and the probes reached the server
    assert during.probes >= 2
    assert refused <= (THRESHOLD + THREADS) * TRIES + during.probes
    assert refused < (EMAILS + RESETS) * TRIES
    # and no email spent more than a couple of attempts
    assert max(attempts.values()) <= 3, attempts
    # The breaker closed by itself
    assert circuit.state().state == "closed"

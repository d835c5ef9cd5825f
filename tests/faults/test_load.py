"""Scenario 7: 50,000 mixed messages through two worker processes, every one accounted for.

The mix: compliance refreshes (45 per tenant over 1,000 tenants), in-app notification runs
(two daily jobs per tenant), custom emails to 1,000 recipients plus five "hot" recipients
who get more than the rate limit allows, and five poison messages that can never succeed.

Every message is accounted for by evidence independent of the code under test, and the
counts must reconcile exactly with what was sent:

- a refresh: one committed transaction in the trigger ledger (per tenant: exactly 45), and
  one ``succeeded`` event with its message id;
- a notification run: one ``job_runs`` row, succeeded, and its notifications, once;
- an email: one delivery at the SMTP server per dedup key, and its ``email_log`` row
  ``sent``; a hot recipient's emails over the limit are ``rate_limited`` first (deferred,
  not failed), then delivered once;
- a poison message: one ``dead_letters`` row, and only the poison ones; none left in the
  broker's ``.XQ`` (the store took them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine, text

from gcmc_jobs.actors.compliance import refresh_compliance
from gcmc_jobs.actors.email import send_email
from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.brokers.bulk import enqueue_many
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.testing import SmtpSink
from tests.faults.data import (
    custom_email,
    email_statuses,
    install_refresh_ledger,
    refreshes_per_tenant,
    seed_tenants,
)
from tests.faults.logs import dead_lettered, queue_is_drained
from tests.support import RedisServer, WorkerProcess, wait_until

TODAY = date(2026, 11, 29)
TENANTS = 1_000
REFRESHES_PER_TENANT = 45
RECIPIENTS = 1_000
EMAILS_PER_RECIPIENT = 3
HOT_RECIPIENTS = 5
EMAILS_PER_HOT_RECIPIENT = 30
#: Per recipient per window, for this scenario: hot recipients get 10 now, 20 deferred.
RATE_LIMIT = {"GCMC_JOBS_RATE_LIMIT": "10", "GCMC_JOBS_RATE_LIMIT_WINDOW_MS": "2000"}
QUEUES = ("gcmc_compliance", "gcmc_email", "gcmc_email_critical", "gcmc_scheduled")


@pytest.fixture
def redis_server(fault_dir: Path) -> Iterator[RedisServer]:
    """This scenario measures counts, not crash safety: Redis without an fsync per write."""
    server = RedisServer(fault_dir / "redis", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {**worker_env, **RATE_LIMIT}


def _events(log_text: str, names: set[str]) -> list[dict[str, Any]]:
    """The JSON events named ``names`` (a cheap substring filter first: the log is large)."""
    found = []
    for line in log_text.splitlines():
        if line.startswith("{") and any(f'"event": "{n}"' in line for n in names):
            event = json.loads(line)
            if event.get("event") in names:
                found.append(event)
    return found


def _poison(producer: Runtime) -> list[dramatiq.Message[Any]]:
    """Five messages that can never succeed, each failing in a different place."""
    broker = producer.broker
    bypass = [  # written straight to the broker: no send-time validation
        dramatiq.Message(
            queue_name="gcmc_email",
            actor_name="send_email",
            args=(),
            kwargs={"kind": "custom", "to": "poison@example.com", "payload": {"x": 1}},
            options={},
        ),
        dramatiq.Message(
            queue_name="gcmc_email",
            actor_name="send_email",
            args=(),
            kwargs={"kind": "no_such_kind", "to": "poison@example.com", "payload": {}},
            options={},
        ),
        dramatiq.Message(
            queue_name="gcmc_compliance",
            actor_name="no_such_actor",
            args=(1,),
            kwargs={},
            options={},
        ),
    ]
    sent = [broker.enqueue(message) for message in bypass]
    sent.append(refresh_compliance.send(987_654_321))  # no such tenant: permanent
    sent.append(refresh_compliance.send_with_options(args=("not-a-tenant-id",), max_retries=0))
    return sent


@pytest.mark.timeout(600)
def test_fifty_thousand_mixed_messages_are_each_processed_once_or_dead_lettered(
    fault_db: tuple[str, Engine],
    redis_server: RedisServer,
    smtp_server: SmtpSink,
    namespace: str,
    producer: Runtime,
    start_workers: Callable[..., WorkerProcess],
) -> None:
    _, engine = fault_db
    client = redis_server.client()
    broker = producer.broker
    tenant_ids = seed_tenants(
        engine, tenants=TENANTS, clients_per_tenant=1, today=TODAY, owners=True
    ).tenant_ids
    install_refresh_ledger(engine)

    # Given 50,000+ messages enqueued in bulk (pipelined)
    refreshes = [
        refresh_compliance.message(tenant_id, today=TODAY.isoformat())
        for _ in range(REFRESHES_PER_TENANT)
        for tenant_id in tenant_ids
    ]
    notify_day = TODAY + timedelta(days=5)  # the seeded document expires 5 days later
    daily = [
        run_daily_job.message(job, tenant_id, notify_day.isoformat())
        for tenant_id in tenant_ids
        for job in ("document_expiry_notifications", "filing_reminders")
    ]
    normal_emails = [
        send_email.message_with_options(
            kwargs={
                "kind": "custom",
                "to": f"reader{r}@example.com",
                "payload": custom_email(n, prefix=f"load-{r}"),
                "dedup_key": f"load-{r}-{n}",
            }
        )
        for r in range(RECIPIENTS)
        for n in range(EMAILS_PER_RECIPIENT)
    ]
    hot_emails = [
        send_email.message_with_options(
            kwargs={
                "kind": "custom",
                "to": f"hot{h}@example.com",
                "payload": custom_email(n, prefix=f"hot-{h}"),
                "dedup_key": f"hot-{h}-{n}",
            }
        )
        for h in range(HOT_RECIPIENTS)
        for n in range(EMAILS_PER_HOT_RECIPIENT)
    ]
    emails = normal_emails + hot_emails
    bulk = enqueue_many(broker, [*hot_emails, *normal_emails, *daily, *refreshes])
    assert bulk.duplicates == 0
    poison = _poison(producer)
    sent = len(bulk.enqueued) + len(poison)
    assert sent >= 50_000

    # When two worker processes work through them
    workers = start_workers(processes=2, threads=4)

    # Then every queue drains, and every message is accounted for
    expected_refreshes = TENANTS * REFRESHES_PER_TENANT

    def done() -> bool:
        return (
            smtp_server.count() >= len(emails)
            and sum(refreshes_per_tenant(engine).values()) >= expected_refreshes
            and all(queue_is_drained(client, namespace, queue) for queue in QUEUES)
        )

    wait_until(
        done, timeout_s=600, interval_s=0.5, what="every queue to drain", diagnose=workers.log_tail
    )
    expected_successes = {m.message_id for m in [*refreshes, *daily, *emails]}

    def logged() -> list[dict[str, Any]] | None:
        # Workers write info lines in batches: wait until the last batch is in the log.
        names = {"succeeded", "rate_limited", "dead_lettered", "skipped_duplicate"}
        found = _events(workers.output(), names)
        done = {e["message_id"] for e in found if e["event"] == "succeeded"}
        return found if done >= expected_successes else None

    events = wait_until(logged, timeout_s=60, interval_s=0.5, what="every success logged")
    succeeded = Counter(e["message_id"] for e in events if e["event"] == "succeeded")
    rate_limited = {e["message_id"] for e in events if e["event"] == "rate_limited"}
    skipped = [e for e in events if e["event"] == "skipped_duplicate"]

    # Refreshes: 45 committed per tenant, one success per message
    ledger = refreshes_per_tenant(engine)
    refresh_ids = {m.message_id for m in refreshes}
    assert ledger == dict.fromkeys(tenant_ids, REFRESHES_PER_TENANT)
    assert {i: succeeded[i] for i in refresh_ids} == dict.fromkeys(refresh_ids, 1)

    # Notification runs: one ledger row each, succeeded; each notification once
    with engine.connect() as connection:
        runs = connection.execute(
            text("SELECT status, count(*) FROM job_runs GROUP BY status")
        ).all()
        notifications = connection.execute(
            text(
                "SELECT kind, count(*), count(DISTINCT dedup_key) FROM notifications GROUP BY kind"
            )
        ).all()
        dead_rows = connection.execute(
            text("SELECT message_id, error_type FROM dead_letters")
        ).all()
    daily_ids = {m.message_id for m in daily}
    assert dict(runs) == {"succeeded": len(daily)}
    assert {i: succeeded[i] for i in daily_ids} == dict.fromkeys(daily_ids, 1)
    assert {kind: (n, distinct) for kind, n, distinct in notifications} == {
        "document_expiry": (TENANTS, TENANTS),
        "filing_overdue": (TENANTS, TENANTS),
    }

    # Emails: each delivered once; the hot recipients' extra ones were deferred, not failed
    per_key = smtp_server.per_dedup_key()
    email_keys = {m.kwargs["dedup_key"] for m in emails}
    duplicates = sum(n - 1 for n in per_key.values())
    assert set(per_key) == email_keys
    assert duplicates == 0
    assert email_statuses(engine) == dict.fromkeys(email_keys, "sent")
    # (How many are deferred depends on how fast the burst is taken: windows pass meanwhile.
    # Every deferral must be of a hot recipient, and each deferred email arrive once.)
    hot_ids = {m.message_id for m in hot_emails}
    assert rate_limited <= hot_ids
    assert rate_limited, "no email was over the limit: the scenario did not exercise it"
    email_ids = {m.message_id for m in emails}
    assert {i: succeeded[i] for i in email_ids} == dict.fromkeys(email_ids, 1)

    # Poison: dead-lettered, and nothing else was
    poison_ids = {m.message_id for m in poison}
    assert {row.message_id for row in dead_rows} == poison_ids
    # Stored, so the brokers' own dead-letter queues keep none of them (issue 11, item 15)
    wait_until(
        lambda: sum(dead_lettered(client, namespace, queue) for queue in QUEUES) == 0,
        timeout_s=60,
        what="the broker's dead-letter queues emptied of what the store took",
    )
    assert not skipped, skipped[:3]

    processed_once = len(refresh_ids) + len(daily_ids) + len(email_ids)
    print(
        f"\n[scenario 7] sent={sent} processed_once={processed_once} "
        f"(refreshes={len(refresh_ids)} notification_runs={len(daily_ids)} "
        f"emails={len(email_ids)} of which rate_limited_then_processed={len(rate_limited)}) "
        f"dead_lettered={len(dead_rows)} duplicates={duplicates} "
        f"reconciled={processed_once + len(dead_rows) == sent} "
        f"errors={Counter(row.error_type.rsplit('.', 1)[-1] for row in dead_rows)}"
    )
    assert processed_once + len(dead_rows) == sent

"""Email delivery in a real ``dramatiq gcmc_jobs.worker`` process over Redis: one thread, so
every email below goes through the same SMTP connection slot (issue 11, items 1 and 4)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from gcmc_jobs.bootstrap import configured
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.sending import queue_custom_email
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from tests.support import WorkerProcess, wait_until

pytestmark = pytest.mark.slow

CUSTOM = {"tenant_name": "Acme", "subject": "Hello", "body": "Hi"}


@pytest.fixture
def producer(
    gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str, smtp_server: SmtpSink
) -> Iterator[Runtime]:
    """This process as a host on the real Redis broker; mail goes to ``smtp_server``, which
    does not offer SMTPUTF8."""
    settings = Settings(
        database_url=gcmc_postgres_url,
        broker_url=gcmc_redis_url,
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}_email_worker",
        email_url=smtp_server.url,
        email_retry_max_wait_ms=0,
        log_format="json",
    )
    with configured(settings) as runtime:
        yield runtime


def test_a_worker_dead_letters_undeliverable_emails_at_once_and_delivers_the_next(
    gcmc_db: Engine,
    producer: Runtime,
    smtp_server: SmtpSink,
    gcmc_worker_process: Callable[..., WorkerProcess],
) -> None:
    # Given a worker process with one thread
    worker = gcmc_worker_process(producer.settings, threads=1)
    # When it gets an email to a non-ASCII local part (the server lacks SMTPUTF8), one for a
    # tenant id the database does not know, then an ordinary one
    non_ascii = queue_custom_email("jürgen@müller.example", CUSTOM)
    unknown_tenant = queue_custom_email("jane@example.com", CUSTOM, tenant_id=987_654_320)
    ordinary = queue_custom_email("next@example.com", CUSTOM)

    def dead_letters() -> dict[str, tuple[str, str, int]]:
        with gcmc_db.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT message_id, error_type, error, attempts FROM dead_letters "
                    "WHERE message_id IN (:a, :b)"
                ),
                {"a": non_ascii.message_id, "b": unknown_tenant.message_id},
            ).all()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    wait_until(
        lambda: smtp_server.count() == 1 and len(dead_letters()) == 2,
        timeout_s=60,
        what="one delivery and two dead letters",
        diagnose=worker.describe,
    )
    # Then the ordinary email was delivered on the same thread
    assert [d.recipients for d in smtp_server.deliveries] == [("next@example.com",)]
    assert smtp_server.deliveries[0].dedup_key == ordinary.kwargs["dedup_key"]
    # And each undeliverable one was dead-lettered after its first attempt, saying why
    found = dead_letters()
    error_type, error, attempts = found[non_ascii.message_id]
    assert (error_type, attempts) == ("gcmc_jobs.errors.PermanentDeliveryError", 1)
    assert "SMTPUTF8" in error
    error_type, error, attempts = found[unknown_tenant.message_id]
    assert (error_type, attempts) == ("gcmc_jobs.errors.UnknownTenant", 1)
    assert "987654320" in error
    assert worker.stop() == 0, worker.describe()
    # And no SMTP command was refused out of sequence ("503 Error: nested MAIL command" and
    # the like, which a half-used connection returned to the pool would cause)
    assert not re.search(r"(?<![\d.,:])503(?!\d)", worker.output()), worker.output()

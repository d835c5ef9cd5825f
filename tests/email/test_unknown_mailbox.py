"""A 5xx at RCPT saying the mailbox does not exist suppresses the address at once (issue 13,
item 2), through the email actor and a real SMTP server that refuses the recipient."""

from __future__ import annotations

import dramatiq
from sqlalchemy import Engine

from gcmc_jobs import queue_names as queues
from gcmc_jobs.db.enums import EmailStatus, SuppressionReason
from gcmc_jobs.email import Welcome
from gcmc_jobs.sending import queue_welcome_email
from gcmc_jobs.services import email_log, suppressions
from gcmc_jobs.services.bounces import events_of
from gcmc_jobs.testing import SmtpSink


def _drain(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    broker.join(queues.EMAIL, fail_fast=False)
    worker.join()


def test_a_550_5_1_1_at_rcpt_suppresses_the_address_and_the_next_email_is_not_attempted(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    # Given a server that refuses the recipient at RCPT TO: 550 5.1.1
    smtp_server.reject(recipient, at="rcpt")

    # When an email is sent to it
    first = queue_welcome_email(recipient, Welcome.sample())
    _drain(gcmc_broker, gcmc_worker)

    # Then it failed once, not retried, and the address is suppressed by "smtp"
    key = first.kwargs["dedup_key"]
    with gcmc_db.connect() as connection:
        row = email_log.get(connection, key)
        assert row is not None
        assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
        assert email_log.suppression_reason(connection, recipient) is SuppressionReason.HARD_BOUNCE
        [listed] = suppressions.list_suppressions(connection)
        [change] = suppressions.changes(connection)
        [event] = events_of(connection, key)
    assert smtp_server.refused == ["550 5.1.1 mailbox unavailable"]
    assert (listed.source, listed.event_id) == ("smtp", f"smtp:{key}:{recipient}")
    assert (change.action, change.actor) == ("added", "smtp")
    assert (event["kind"], event["permanent"], event["source"]) == ("bounced", True, "smtp")

    # When another email goes to the same address: suppressed, never offered to the server
    other = queue_welcome_email(recipient, Welcome.sample().model_copy(update={"user_name": "B"}))
    _drain(gcmc_broker, gcmc_worker)
    with gcmc_db.connect() as connection:
        second = email_log.get(connection, other.kwargs["dedup_key"])
    assert second is not None
    assert second.status is EmailStatus.SUPPRESSED
    assert smtp_server.refused == ["550 5.1.1 mailbox unavailable"]


def test_a_5xx_at_rcpt_for_another_reason_fails_without_suppressing(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    # A policy refusal after DATA (5.7.1) is permanent for this email, not the address
    smtp_server.script("554 5.7.1 message refused by policy")
    message = queue_welcome_email(recipient, Welcome.sample())
    _drain(gcmc_broker, gcmc_worker)
    with gcmc_db.connect() as connection:
        row = email_log.get(connection, message.kwargs["dedup_key"])
        assert row is not None
        assert row.status is EmailStatus.FAILED
        assert email_log.suppression_reason(connection, recipient) is None

"""The email actors end to end: a host sends, a Dramatiq worker delivers to a real SMTP
server (aiosmtpd), and ``email_log`` records it once per dedup key."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
import redis
import time_machine
from sqlalchemy import Engine, insert, text

from gcmc_jobs import queue_names as queues
from gcmc_jobs import redis_keys
from gcmc_jobs.actors.email import send_email, send_security_email
from gcmc_jobs.db.models import EmailStatus, EmailSuppression, SuppressionReason
from gcmc_jobs.email import KINDS, PasswordReset, Welcome, render
from gcmc_jobs.email.delivery import Outcome, deliver
from gcmc_jobs.email.transports import SmtpTransport
from gcmc_jobs.errors import InvalidPayload, UnknownTenant
from gcmc_jobs.sending import (
    build_message,
    is_duplicate,
    queue_custom_email,
    queue_email,
    queue_password_reset_email,
    queue_welcome_email,
)
from gcmc_jobs.services import email_log
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from tests import factories

TOKEN = "tok-5f0c8e2a9b7d41e6"
RESET = {
    "tenant_name": "Acme CPA",
    "user_name": "Sam Staff",
    "reset_url": f"https://portal.example/reset?token={TOKEN}",
}


def _drain(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    for queue in (queues.EMAIL, queues.EMAIL_CRITICAL):
        broker.join(queue, fail_fast=False)
    worker.join()


def _row(engine: Engine, key: str) -> email_log.LogEntry:
    with engine.connect() as connection:
        row = email_log.get(connection, key)
    assert row is not None
    return row


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_arrives_as_multipart_with_its_subject_and_both_parts(
    kind: str,
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    payload = KINDS[kind].model.sample()
    message = queue_email(kind, recipient, payload)
    _drain(gcmc_broker, gcmc_worker)

    [received] = smtp_server.messages
    assert received["To"] == recipient
    assert received["Subject"] == render(kind, payload).subject
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "Acme CPA" in text
    assert "Acme CPA" in html
    row = _row(gcmc_db, message.kwargs["dedup_key"])
    assert (row.status, row.attempts, row.kind) == (EmailStatus.SENT, 1, kind)
    assert row.provider_message_id == received["Message-ID"]


def test_a_password_reset_travels_on_the_critical_queue_with_its_link(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    message = queue_password_reset_email(recipient, RESET)
    assert (message.queue_name, message.actor_name) == (
        queues.EMAIL_CRITICAL,
        "send_security_email",
    )
    _drain(gcmc_broker, gcmc_worker)
    [received] = smtp_server.messages
    assert TOKEN in received.get_body(("plain",)).get_content()


def test_a_421_then_success_is_retried_and_delivered_once(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    smtp_server.script("421 4.3.0 try again later")
    message = queue_welcome_email(recipient, Welcome.sample())
    _drain(gcmc_broker, gcmc_worker)
    assert len(smtp_server.messages) == 1
    assert _row(gcmc_db, message.kwargs["dedup_key"]).status == EmailStatus.SENT


def test_a_server_down_longer_than_one_attempt_is_retried_by_dramatiq(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    # Given a server refusing more times than one attempt tries (3)
    smtp_server.script(*["421 4.3.0 try again later"] * 4)
    # When the email is sent with a short backoff
    message = send_email.send_with_options(
        kwargs={"kind": "welcome", "to": recipient, "payload": Welcome.sample()},
        min_backoff=10,
        max_backoff=20,
    )
    _drain(gcmc_broker, gcmc_worker)
    # Then the second attempt delivered it, once
    assert len(smtp_server.messages) == 1
    row = _row(gcmc_db, message.kwargs["dedup_key"])
    assert (row.status, row.attempts, row.error) == (EmailStatus.SENT, 2, None)


def test_a_550_is_not_retried_and_is_recorded_failed(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    smtp_server.script("550 5.1.1 no such user")
    message = queue_welcome_email(recipient, Welcome.sample())
    _drain(gcmc_broker, gcmc_worker)
    assert smtp_server.messages == []
    assert smtp_server.refused == ["550 5.1.1 no such user"]
    row = _row(gcmc_db, message.kwargs["dedup_key"])
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
    assert row.error is not None
    assert "550" in row.error


def test_the_same_dedup_key_sent_twice_reaches_the_server_once(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    first = queue_welcome_email(recipient, Welcome.sample(), dedup_key="welcome:client:1")
    other_payload = Welcome.sample().model_copy(update={"client_name": "Jane D."})
    queue_welcome_email(recipient, other_payload, dedup_key="welcome:client:1")
    _drain(gcmc_broker, gcmc_worker)
    [received] = smtp_server.messages
    assert "Jane Doe" in received["Subject"]
    assert first.options["dedup_key"] == "welcome:client:1"


def test_the_same_email_sent_twice_without_a_key_reaches_the_server_once(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    queue_welcome_email(recipient, Welcome.sample())
    queue_welcome_email(recipient, Welcome.sample().model_dump())
    _drain(gcmc_broker, gcmc_worker)
    assert len(smtp_server.messages) == 1


def test_the_same_message_processed_twice_mails_once(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    # Given a message delivered once (the server accepted it)
    message = build_message("welcome", recipient, Welcome.sample())
    gcmc_broker.enqueue(message)
    _drain(gcmc_broker, gcmc_worker)
    # When it is delivered again (a worker killed before the ack), twice over
    gcmc_broker.enqueue(message)
    send_email.fn(**message.kwargs)
    _drain(gcmc_broker, gcmc_worker)
    # Then the server got it once, and the record counts one attempt
    assert len(smtp_server.messages) == 1
    assert _row(gcmc_db, message.kwargs["dedup_key"]).attempts == 1


def test_two_workers_delivering_the_same_key_at_once_mail_once(
    gcmc_db: Engine, smtp_server: SmtpSink, recipient: str
) -> None:
    transport = SmtpTransport(smtp_server.url)
    start = threading.Barrier(4)
    outcomes: list[Outcome] = []

    def work() -> None:
        start.wait()
        delivery = deliver(
            gcmc_db,
            transport,
            kind="welcome",
            to=recipient,
            payload=Welcome.sample(),
            dedup_key="welcome:race",
            sender="no-reply@gcmc.example",
        )
        outcomes.append(delivery.outcome)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    transport.close()
    assert len(smtp_server.messages) == 1
    assert sorted(outcomes) == sorted([Outcome.SENT] + [Outcome.ALREADY_DONE] * 3)


def test_delivery_on_sqlite_records_and_mails_once(
    gcmc_sqlite_db: Engine, smtp_server: SmtpSink, recipient: str
) -> None:
    transport = SmtpTransport(smtp_server.url)
    call: dict[str, Any] = {
        "kind": "welcome",
        "to": recipient,
        "payload": Welcome.sample(),
        "dedup_key": "welcome:sqlite",
        "sender": "no-reply@gcmc.example",
    }
    assert deliver(gcmc_sqlite_db, transport, **call).outcome == Outcome.SENT
    assert deliver(gcmc_sqlite_db, transport, **call).outcome == Outcome.ALREADY_DONE
    transport.close()
    assert len(smtp_server.messages) == 1
    assert _row(gcmc_sqlite_db, "welcome:sqlite").status == EmailStatus.SENT


def _suppress(engine: Engine, address: str, reason: SuppressionReason) -> None:
    with engine.begin() as connection:
        connection.execute(insert(EmailSuppression).values(address=address, reason=reason))


def test_a_suppressed_address_is_not_mailed(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    _suppress(gcmc_db, recipient, SuppressionReason.HARD_BOUNCE)
    message = queue_welcome_email(recipient.upper(), Welcome.sample())
    _drain(gcmc_broker, gcmc_worker)
    assert smtp_server.messages == []
    row = _row(gcmc_db, message.kwargs["dedup_key"])
    assert row.status == EmailStatus.SUPPRESSED


@pytest.mark.parametrize(
    ("stored", "sent_to"),
    [
        ("Mixed.Case@Example.com", "mixed.case@example.com"),
        ("mixed.case@example.com", "MIXED.Case@EXAMPLE.com"),
    ],
)
def test_a_suppression_applies_whatever_the_case_of_either_address(
    stored: str,
    sent_to: str,
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
) -> None:
    # Given a hard bounce stored in one case
    _suppress(gcmc_db, stored, SuppressionReason.HARD_BOUNCE)
    # When a transactional email and a password reset go to the address in another case
    welcome = queue_welcome_email(sent_to, Welcome.sample())
    reset = queue_password_reset_email(sent_to, RESET)
    _drain(gcmc_broker, gcmc_worker)
    # Then neither is mailed: both are recorded suppressed, under the normalised address
    assert smtp_server.messages == []
    for message in (welcome, reset):
        row = _row(gcmc_db, message.kwargs["dedup_key"])
        assert (row.status, row.to_address) == (EmailStatus.SUPPRESSED, "mixed.case@example.com")


@pytest.mark.parametrize(
    ("reason", "mailed"),
    [(SuppressionReason.COMPLAINT, True), (SuppressionReason.HARD_BOUNCE, False)],
)
def test_a_password_reset_ignores_a_complaint_but_not_a_hard_bounce(
    reason: SuppressionReason,
    mailed: bool,
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    _suppress(gcmc_db, recipient, reason)
    queue_password_reset_email(recipient, RESET)
    _drain(gcmc_broker, gcmc_worker)
    assert len(smtp_server.messages) == (1 if mailed else 0)


def test_html_in_a_name_arrives_escaped(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    payload = Welcome.sample().model_copy(update={"client_name": "<script>alert(1)</script>"})
    queue_welcome_email(recipient, payload)
    _drain(gcmc_broker, gcmc_worker)
    html = smtp_server.messages[0].get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_cr_lf_in_a_subject_is_refused_at_send_time_and_nothing_is_enqueued(
    gcmc_broker: dramatiq.Broker, recipient: str
) -> None:
    with pytest.raises(InvalidPayload, match="subject"):
        queue_custom_email(
            recipient,
            {"tenant_name": "Acme", "subject": "Hello\r\nBcc: all@example.com", "body": "Hi"},
        )
    assert gcmc_broker.queues[queues.EMAIL].qsize() == 0


def test_an_invalid_payload_through_the_actor_itself_is_refused_in_the_caller(
    gcmc_broker: dramatiq.Broker, recipient: str
) -> None:
    with pytest.raises(InvalidPayload, match="support_email"):
        send_email.send(
            "welcome", recipient, {**Welcome.sample().model_dump(), "support_email": "x"}
        )
    with pytest.raises(InvalidPayload, match="unknown email kind"):
        send_security_email.send("newsletter", recipient, {})
    assert gcmc_broker.queues[queues.EMAIL].qsize() == 0
    assert gcmc_broker.queues[queues.EMAIL_CRITICAL].qsize() == 0


def test_a_tenant_id_is_recorded(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    gcmc_session: Any,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    tenant = factories.tenant(gcmc_session)
    gcmc_session.commit()
    message = queue_welcome_email(recipient, Welcome.sample(), tenant_id=tenant.id)
    assert message.options["tenant_id"] == tenant.id
    _drain(gcmc_broker, gcmc_worker)
    assert _row(gcmc_db, message.kwargs["dedup_key"]).tenant_id == tenant.id


def test_no_log_line_contains_a_reset_token(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    smtp_server: SmtpSink,
    recipient: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # The test server's own log shows what it received, as a real mail server's would.
    caplog.set_level(logging.WARNING, logger="mail.log")
    # Given a reset retried by Dramatiq (more 421s than one attempt tries) and one refused
    smtp_server.script(*["421 4.3.0 try again later"] * 3)
    send_security_email.send_with_options(
        kwargs={"kind": "password_reset", "to": recipient, "payload": RESET},
        min_backoff=10,
        max_backoff=20,
    )
    _drain(gcmc_broker, gcmc_worker)
    smtp_server.script("550 5.7.1 rejected")
    queue_password_reset_email(recipient, {**RESET, "expires_in_minutes": 30})
    _drain(gcmc_broker, gcmc_worker)
    # Then the first one arrived with its token, and no log line anywhere shows it
    assert len(smtp_server.messages) == 1
    assert TOKEN in smtp_server.messages[0].get_body(("plain",)).get_content()
    captured = capsys.readouterr()
    assert caplog.records, "the worker logged nothing: the test would prove nothing"
    assert TOKEN not in caplog.text
    assert TOKEN not in captured.out + captured.err
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def test_a_password_reset_model_is_accepted_and_kept_secret(
    gcmc_broker: dramatiq.Broker, recipient: str
) -> None:
    message = queue_password_reset_email(recipient, PasswordReset.sample())
    assert "sample-token" not in str(message)
    assert "sample-token" not in repr(message.kwargs)


def test_a_non_ascii_recipient_fails_alone_and_the_next_email_on_the_thread_is_delivered(
    gcmc_broker: dramatiq.Broker, gcmc_db: Engine, smtp_server: SmtpSink, recipient: str
) -> None:
    # Given one worker thread and a server without SMTPUTF8
    worker = dramatiq.Worker(gcmc_broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        # When an email to a non-ASCII local part is sent, then an unrelated one
        custom = {"tenant_name": "Acme", "subject": "Hello", "body": "Hi"}
        bad = queue_custom_email("jürgen@müller.example", custom)
        _drain(gcmc_broker, worker)
        good = queue_custom_email(recipient, custom)
        _drain(gcmc_broker, worker)
    finally:
        worker.stop()
    # Then the first failed for good after one attempt, with a clear error, dead-lettered
    row = _row(gcmc_db, bad.kwargs["dedup_key"])
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
    assert row.error is not None
    assert "SMTPUTF8" in row.error
    with gcmc_db.connect() as connection:
        dead = connection.execute(
            text("SELECT message_id, error_type, attempts FROM dead_letters")
        ).all()
    assert [tuple(d) for d in dead] == [
        (bad.message_id, "gcmc_jobs.errors.PermanentDeliveryError", 1)
    ]
    # And the next email on the same thread was delivered
    assert _row(gcmc_db, good.kwargs["dedup_key"]).status == EmailStatus.SENT
    assert [d.recipients for d in smtp_server.deliveries] == [(recipient,)]


def test_an_unknown_tenant_id_is_dead_lettered_at_once_naming_it(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    # Given a tenant id the database does not know
    custom = {"tenant_name": "Acme", "subject": "Hello", "body": "Hi"}
    # When an email for it is sent
    message = queue_custom_email(recipient, custom, tenant_id=987_654_321)
    _drain(gcmc_broker, gcmc_worker)
    # Then it is dead-lettered after its first attempt, naming the tenant id; nothing mailed
    with gcmc_db.connect() as connection:
        dead = connection.execute(
            text("SELECT message_id, error_type, error, attempts FROM dead_letters")
        ).all()
        assert email_log.get(connection, message.kwargs["dedup_key"]) is None
    [(message_id, error_type, error, attempts)] = dead
    assert (message_id, error_type, attempts) == (
        message.message_id,
        "gcmc_jobs.errors.UnknownTenant",
        1,
    )
    assert "no tenant has id 987654321" in error
    assert smtp_server.messages == []


def test_an_unknown_tenant_is_refused_without_a_foreign_key_to_say_so(
    gcmc_sqlite_db: Engine, smtp_server: SmtpSink, recipient: str
) -> None:
    # Given a database where email_log.tenant_id is not enforced (a host's tenants table
    # may carry no foreign key: here SQLite's enforcement is off on the connection)
    transport = SmtpTransport(smtp_server.url)
    with gcmc_sqlite_db.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        # When a row for an unknown tenant is inserted, Then UnknownTenant names it
        with pytest.raises(UnknownTenant, match="no tenant has id 4242"):
            email_log.ensure_queued(
                connection,
                dedup_key="custom:unknown-tenant",
                to_address=recipient,
                kind="custom",
                subject="Hello",
                tenant_id=4242,
            )
        connection.rollback()
        assert email_log.get(connection, "custom:unknown-tenant") is None
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
    # And deliver() mails nothing for it
    with pytest.raises(UnknownTenant):
        deliver(
            gcmc_sqlite_db,
            transport,
            kind="welcome",
            to=recipient,
            payload=Welcome.sample(),
            dedup_key="welcome:unknown-tenant",
            sender="no-reply@gcmc.example",
            tenant_id=4242,
        )
    transport.close()
    assert smtp_server.messages == []


def _forget_claim(settings: Settings, key: str) -> None:
    """The enqueue-time claim of ``key`` expires (its dedup TTL passed)."""
    assert settings.store_redis_url is not None
    client = redis.Redis.from_url(settings.store_redis_url)
    try:
        assert client.delete(redis_keys.dedup_key(settings.namespace, key)) == 1
    finally:
        client.close()


def test_the_same_email_goes_again_in_a_later_window_and_the_caller_sees_duplicates(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_settings: Settings,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    custom = {"tenant_name": "Acme", "subject": "Your monthly reminder", "body": "Hi"}
    # Given a custom email without a key, delivered
    first = queue_custom_email(recipient, custom)
    _drain(gcmc_broker, gcmc_worker)
    assert not is_duplicate(first)
    # When the same email is sent again at once, Then the caller is told: not enqueued
    again = queue_custom_email(recipient, custom)
    assert is_duplicate(again)
    assert gcmc_broker.queues[queues.EMAIL].qsize() == 0
    # When its claim expired but the window is the same, Then it is enqueued, not mailed
    _forget_claim(gcmc_settings, first.options["dedup_key"])
    same_window = queue_custom_email(recipient, custom)
    assert not is_duplicate(same_window)
    assert same_window.kwargs["dedup_key"] == first.kwargs["dedup_key"]
    _drain(gcmc_broker, gcmc_worker)
    assert len(smtp_server.messages) == 1
    # When the same email is sent a month later, Then it is mailed again
    _forget_claim(gcmc_settings, first.options["dedup_key"])
    with time_machine.travel(datetime.now(UTC) + timedelta(days=31)):
        month_later = queue_custom_email(recipient, custom)
    _drain(gcmc_broker, gcmc_worker)
    assert not is_duplicate(month_later)
    assert [d.dedup_key for d in smtp_server.deliveries] == [
        first.kwargs["dedup_key"],
        month_later.kwargs["dedup_key"],
    ]


def test_an_explicit_key_is_mailed_once_ever(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_settings: Settings,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    custom = {"tenant_name": "Acme", "subject": "Welcome aboard", "body": "Hi"}
    queue_custom_email(recipient, custom, dedup_key="onboarding:7")
    _drain(gcmc_broker, gcmc_worker)
    assert is_duplicate(queue_custom_email(recipient, custom, dedup_key="onboarding:7"))
    _forget_claim(gcmc_settings, "onboarding:7")
    with time_machine.travel(datetime.now(UTC) + timedelta(days=400)):
        later = queue_custom_email(recipient, custom, dedup_key="onboarding:7")
    _drain(gcmc_broker, gcmc_worker)
    assert not is_duplicate(later)  # enqueued (the claim had expired) ...
    assert len(smtp_server.messages) == 1  # ... and the worker found it sent: not mailed

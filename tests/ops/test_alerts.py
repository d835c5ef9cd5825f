"""Alerts pushed to operators (issue 15, item 6): a daily run failed for good, dead letters
above the threshold, health unhealthy for longer than the grace; emailed through a real SMTP
server, at most once per hour per cause."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import dramatiq
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

import gcmc_jobs
from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.schedule import run_daily_job
from gcmc_jobs.middleware.stores.dead_letters import DeadLetterRecord
from gcmc_jobs.ops.alerts import MemoryAlertState, alert_state, push_alerts, watch_operations
from gcmc_jobs.runtime import current
from gcmc_jobs.scheduling.seen_tenants import record_seen_tenants
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing import SmtpSink
from gcmc_jobs.testing.webhooks import WebhookReceiver
from gcmc_jobs.webhooks.signing import SECRET_PREFIX
from tests import factories as f

OPERATORS = ["ops@example.com", "oncall@example.com"]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


DAY = date(2026, 6, 10)
NOON = datetime(2026, 6, 10, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def gcmc_settings(
    gcmc_postgres_url: str, gcmc_redis_url: str, gcmc_namespace: str, smtp_server: SmtpSink
) -> Settings:
    """Two operators, email to a real SMTP server, this test's own Redis namespace."""
    return Settings(
        database_url=gcmc_postgres_url,
        broker_url="stub://",
        redis_url=gcmc_redis_url,
        namespace=f"{gcmc_namespace}:{uuid.uuid4().hex[:8]}",
        email_url=smtp_server.url,
        email_retry_max_wait_ms=0,
        log_format="json",
        alert_emails=OPERATORS,
        alert_dead_letters=2,
        schedule_spread_minutes=0,
    )


def _delivered(
    join: Callable[..., None], smtp_server: SmtpSink, since: int = 0
) -> list[tuple[str, str, str]]:
    """(to, subject, plain body) of every email the worker delivered after the first
    ``since``."""
    join(fail_fast=False)
    return [
        (m["To"], m["Subject"], m.get_body(("plain",)).get_content())
        for m in smtp_server.messages[since:]
    ]


def _dead_daily_run(
    tenant_id: object, job: str = "filing_reminders", at: datetime = NOON - timedelta(minutes=5)
) -> None:
    """A run_daily_job message dead-lettered as the worker would write it."""
    current().stores.dead_letters.add(
        DeadLetterRecord(
            message_id=uuid.uuid4().hex,
            queue=queues.SCHEDULED,
            actor=run_daily_job.actor_name,
            args=[],
            kwargs={"job": job, "tenant_id": tenant_id, "local_date": DAY.isoformat()},
            options={},
            error_type="OperationalError",
            error="connection to server lost",
            traceback=None,
            attempts=9,
            failed_at=at,
        )
    )


def test_a_daily_run_that_failed_for_good_is_told_to_every_operator_once_an_hour(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_session: Session,
    smtp_server: SmtpSink,
) -> None:
    tenant = f.tenant(gcmc_session, "Acme").id
    gcmc_session.commit()
    runtime = current()
    # Given a daily run that failed on every attempt
    _dead_daily_run(tenant)

    # When the watch looks
    [alert] = push_alerts(runtime, now=NOON)

    # Then each operator gets one email naming the job, the tenant and the date
    assert alert.cause == "daily_job_failed"
    mails = _delivered(gcmc_join, smtp_server)
    assert sorted(to for to, _, _ in mails) == sorted(OPERATORS)
    for _, subject, body in mails:
        assert subject == "[gcmc-jobs] 1 daily run(s) failed for good"
        assert f"filing_reminders for tenant {tenant} on {DAY.isoformat()}" in body
        assert "OperationalError: connection to server lost" in body

    # A minute later, and after a second failure within the hour: nothing more yet
    assert push_alerts(runtime, now=NOON + timedelta(minutes=1)) == []
    _dead_daily_run(tenant, "compliance_refresh", at=NOON + timedelta(minutes=20))
    assert push_alerts(runtime, now=NOON + timedelta(minutes=30)) == []
    assert _delivered(gcmc_join, smtp_server, since=2) == []

    # An hour on, the new failure alone is told
    [later] = push_alerts(runtime, now=NOON + HOUR)
    assert "compliance_refresh" in later.body
    assert "filing_reminders" not in later.body
    assert len(_delivered(gcmc_join, smtp_server, since=2)) == len(OPERATORS)
    # and nothing new is nothing told
    assert push_alerts(runtime, now=NOON + 3 * HOUR) == []


def test_too_many_dead_letters_are_told_again_each_hour_while_they_wait(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_session: Session,
    smtp_server: SmtpSink,
) -> None:
    tenant = f.tenant(gcmc_session, "Acme").id
    gcmc_session.commit()
    runtime = current()
    state = MemoryAlertState()  # the in-process state, as without Redis
    for job in ("a", "b"):
        _dead_daily_run(tenant, job)
    causes = [a.cause for a in push_alerts(runtime, now=NOON, state=state)]
    assert causes == ["daily_job_failed"]  # 2 waiting: not above the threshold of 2

    _dead_daily_run(tenant, "c", at=NOON + timedelta(minutes=30))
    causes = [a.cause for a in push_alerts(runtime, now=NOON + HOUR, state=state)]
    assert causes == ["daily_job_failed", "dead_letters"]
    [dead_letters] = [
        body for _, subject, body in _delivered(gcmc_join, smtp_server) if "wait" in subject
    ][:1]
    assert "3 dead letters wait" in dead_letters
    assert push_alerts(runtime, now=NOON + HOUR + timedelta(minutes=59), state=state) == []
    causes = [a.cause for a in push_alerts(runtime, now=NOON + 2 * HOUR, state=state)]
    assert causes == ["dead_letters"]


def test_health_unhealthy_for_longer_than_the_grace_is_told(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_db: Engine,
    gcmc_session: Session,
    smtp_server: SmtpSink,
) -> None:
    # Given a tenant the scheduler has known since midnight and whose runs never ran: by
    # noon its daily jobs are overdue and health is unhealthy
    f.tenant(gcmc_session, "Late")
    gcmc_session.commit()
    with Session(gcmc_db) as session:
        record_seen_tenants(session, NOON.replace(hour=0))
        session.commit()
    runtime = current()

    # Unhealthy at noon and 14 minutes later: within the 15-minute grace, nothing is told
    assert push_alerts(runtime, now=NOON) == []
    assert push_alerts(runtime, now=NOON + timedelta(minutes=14)) == []
    # At 15 minutes it is
    [alert] = push_alerts(runtime, now=NOON + timedelta(minutes=15))
    assert alert.cause == "unhealthy"
    assert alert.subject == "gcmc-jobs unhealthy for 15 minutes"
    assert "daily_jobs:" in alert.body
    mails = _delivered(gcmc_join, smtp_server)
    assert len(mails) == len(OPERATORS)
    assert "Health has been unhealthy since 2026-06-10 12:00 UTC" in mails[0][2]
    # and not again within the hour
    assert push_alerts(runtime, now=NOON + timedelta(minutes=50)) == []


def test_without_operators_nothing_is_evaluated_or_sent(
    gcmc_broker: dramatiq.Broker, gcmc_settings: Settings, gcmc_db: Engine, gcmc_session: Session
) -> None:
    tenant = f.tenant(gcmc_session, "Acme").id
    gcmc_session.commit()
    _dead_daily_run(tenant)
    assert push_alerts(current(), now=NOON)  # with operators, told
    quiet = gcmc_settings.model_copy(update={"alert_emails": []})
    with gcmc_jobs.configured(quiet, engine=gcmc_db) as runtime:
        assert push_alerts(runtime, now=NOON + 2 * HOUR) == []


def test_the_watch_is_a_periodic_actor_on_the_scheduler_queue() -> None:
    assert watch_operations.queue_name == queues.SCHEDULER
    assert "periodic" in watch_operations.options  # periodiq sends it every minute
    assert watch_operations.options["max_retries"] == 0


def test_the_state_lives_in_redis_when_there_is_one(gcmc_broker: dramatiq.Broker) -> None:
    state = alert_state(current())
    assert type(state).__name__ == "RedisAlertState"
    assert state.claim("x", NOON, HOUR)
    assert not state.claim("x", NOON, HOUR)
    state.release("x")
    assert state.claim("x", NOON, HOUR)
    assert state.since("c", NOON) == NOON
    assert state.since("c", NOON + HOUR) == NOON
    state.clear("c")
    assert state.since("c", NOON + HOUR) == NOON + HOUR


def test_an_alert_is_also_posted_signed_to_the_operators_webhook(
    gcmc_broker: dramatiq.Broker,
    gcmc_settings: Settings,
    gcmc_db: Engine,
    gcmc_session: Session,
) -> None:
    # Given an operator webhook (a real local receiver) and no operator email
    tenant = f.tenant(gcmc_session, "Acme").id
    gcmc_session.commit()
    secret = new_secret()
    with WebhookReceiver() as receiver:
        settings = gcmc_settings.model_copy(
            update={
                "alert_emails": [],
                "alert_webhook_url": receiver.url("/ops"),
                "alert_webhook_secret": SecretStr(secret),
                "webhook_allow_private": True,  # the receiver is on loopback
            }
        )
        with gcmc_jobs.configured(settings, engine=gcmc_db) as runtime:
            _dead_daily_run(tenant)
            [alert] = push_alerts(runtime, now=NOON)
            # Then the receiver got it, signed (verified by the standardwebhooks package)
            [request] = receiver.requests
            event = Webhook(secret).verify(request.body, request.headers)
            assert event["type"] == "operator.alert"
            assert event["data"]["cause"] == alert.cause == "daily_job_failed"
            assert f"for tenant {tenant}" in event["data"]["body"]
            # and an endpoint that fails leaves the alert untold, to be tried again
            receiver.behaviour = "error"
            _dead_daily_run(tenant, "compliance_refresh", at=NOON + HOUR)
            assert push_alerts(runtime, now=NOON + 2 * HOUR) == []
            receiver.behaviour = "ok"
            [again] = push_alerts(runtime, now=NOON + 2 * HOUR + timedelta(minutes=1))
            assert "compliance_refresh" in again.body

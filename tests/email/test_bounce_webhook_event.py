"""An email refused for good (SMTP 5xx) writes an ``email.bounced`` webhook event for its
tenant, in the transaction that records the failure."""

from __future__ import annotations

import dramatiq
from sqlalchemy import Engine, select

from gcmc_jobs import queue_names as queues
from gcmc_jobs.db.models import Tenant
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.email import Welcome
from gcmc_jobs.sending import queue_welcome_email
from gcmc_jobs.testing import SmtpSink


def test_a_refused_email_of_a_tenant_is_an_email_bounced_event(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    gcmc_db: Engine,
    gcmc_tenant: Tenant,
    smtp_server: SmtpSink,
    recipient: str,
) -> None:
    smtp_server.reject(recipient, at="rcpt")
    sent = queue_welcome_email(recipient, Welcome.sample(), tenant_id=gcmc_tenant.id)
    queue_welcome_email(recipient, Welcome.sample().model_copy(update={"user_name": "No tenant"}))
    gcmc_broker.join(queues.EMAIL, fail_fast=False)
    gcmc_worker.join()

    e = tables_of(gcmc_db).webhook_events.c
    with gcmc_db.connect() as connection:
        rows = connection.execute(select(e.event_type, e.tenant_id, e.payload)).all()
    [event] = rows
    assert (event.event_type, event.tenant_id) == ("email.bounced", gcmc_tenant.id)
    assert event.payload["address"] == recipient
    assert event.payload["email_dedup_key"] == sent.kwargs["dedup_key"]
    assert event.payload["kind"] == "welcome"

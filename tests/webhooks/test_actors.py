"""The webhook actors through the package's broker and a worker: a level change reaches a
real receiver; a failing endpoint is retried, disabled, and its owners emailed; a daily run
that fails for good and a bounced email become events."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage

import dramatiq
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

import gcmc_jobs
from gcmc_jobs.actors import dispatch_webhooks, refresh_compliance
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.enums import DocumentStatus, Role
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services import webhook_deliveries as deliveries
from gcmc_jobs.services import webhook_endpoints as endpoints
from gcmc_jobs.services.tenancy import utcnow
from gcmc_jobs.testing.webhooks import WebhookReceiver
from tests import factories as f


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def test_a_level_change_reaches_the_subscribed_endpoint_signed(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_db: Engine,
    receiver: WebhookReceiver,
) -> None:
    # Given a scored client and an endpoint subscribed to level changes
    today = utcnow().date().isoformat()
    with session_scope(gcmc_db) as session:
        t = f.tenant(session)
        f.member(session, t, Role.OWNER)
        c = f.client(session, t, name="Client A")
        _, secret = endpoints.add_endpoint(
            session, t.id, receiver.url(), ["compliance.level_changed"]
        )
        tenant_id = t.id
    refresh_compliance.send(tenant_id, today=today)
    gcmc_join()
    assert receiver.requests == []  # a first score is not a change

    # When the client's documents are rejected and the tenant is refreshed again
    with session_scope(gcmc_db) as session:
        for _ in range(11):
            f.document(session, c, status=DocumentStatus.REJECTED)
    refresh_compliance.send(tenant_id, today=today)
    gcmc_join()

    # Then the endpoint got one signed compliance.level_changed event
    [request] = receiver.requests
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "compliance.level_changed"
    assert (event["data"]["previous_level"], event["data"]["level"]) == ("low", "high")
    assert event["data"]["client_name"] == "Client A"


def test_a_failing_endpoint_is_retried_then_disabled_and_the_owners_emailed(
    gcmc_broker: dramatiq.Broker,
    gcmc_join: Callable[..., None],
    gcmc_db: Engine,
    gcmc_outbox: list[EmailMessage],
    receiver: WebhookReceiver,
) -> None:
    # Given an endpoint that always answers 500, a retry window of 0.3 s from 20 ms
    runtime = gcmc_jobs.runtime.current()
    runtime.settings = runtime.settings.model_copy(update={"webhook_retry_window_ms": 300})
    receiver.behaviour = "error"
    with session_scope(gcmc_db) as session:
        t = f.tenant(session)
        f.member(session, t, Role.OWNER, email="owner@example.com")
        endpoint, _ = endpoints.add_endpoint(session, t.id, receiver.url(), "*")
        deliveries.create_test_delivery(session, endpoint.id)

    # When the dispatcher runs and the attempts follow their schedule
    dispatch_webhooks.send()
    gcmc_join()

    # Then every attempt was recorded, at least 20 ms then 80 ms apart (x4 each: the
    # schedule's lower bounds; a busy machine only adds to them), and it was given up
    with Session(gcmc_db) as session:
        [delivery] = deliveries.list_deliveries(session)
        attempts = deliveries.attempts_of(session, delivery.id)
        assert delivery.status == "failed"
        assert [a.status_code for a in attempts] == [500] * len(attempts)
        assert len(attempts) == len(receiver.requests) >= 2
        gaps = [b.attempted_at - a.attempted_at for a, b in itertools.pairwise(attempts)]
        for gap, least in zip(gaps, (20, 80), strict=False):
            assert gap >= timedelta(milliseconds=least)
        assert endpoints.get_endpoint(session, endpoint.id).enabled is False
    # And the owner got an email
    [mail] = gcmc_outbox
    assert mail["To"] == "owner@example.com"
    assert mail["Subject"].endswith("A webhook endpoint was disabled")


def test_a_daily_run_failing_for_good_emits_job_run_failed(gcmc_db: Engine) -> None:
    from gcmc_jobs.scheduling.runner import run_for_tenant

    def broken(found: object) -> object:
        raise ConnectionError("redis went away")

    # Given a tenant with a digest to send, and a digest sender that fails
    day = utcnow().date()
    with session_scope(gcmc_db) as session:
        t = f.tenant(session)
        f.member(session, t, Role.MANAGER)
        f.document(session, f.client(session, t), expiry=day + timedelta(days=30))
        tenant_id = t.id
    for final in (False, True):  # a failure with retries left is not for good
        with pytest.raises(ConnectionError):
            run_for_tenant(
                gcmc_db,
                "document_expiry_emails",
                tenant_id,
                local_date=day,
                send_digests=broken,  # type: ignore[arg-type]
                final_attempt=final,
            )
        with Session(gcmc_db) as session:
            e = tables_of(session).webhook_events.c
            found = session.execute(select(e.event_type, e.payload)).all()
        assert len(found) == int(final)
    assert found[0].event_type == "job_run.failed"
    assert found[0].payload["job"] == "document_expiry_emails"
    assert found[0].payload["error"] == "ConnectionError: redis went away"

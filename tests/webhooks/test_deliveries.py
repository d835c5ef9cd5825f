"""Webhook deliveries on both mappings: fan-out, signed attempts against a real receiver,
retries, giving up (endpoint disabled, owners told), replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from gcmc_jobs.db.enums import Role
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.errors import InvalidPayload, UnknownWebhookEndpoint
from gcmc_jobs.services import webhook_deliveries as deliveries
from gcmc_jobs.services import webhook_endpoints as endpoints
from gcmc_jobs.services import webhook_events as events
from gcmc_jobs.testing.webhooks import WebhookReceiver
from gcmc_jobs.webhooks.client import WebhookClient
from gcmc_jobs.webhooks.delivery import attempt_delivery
from tests import factories as f
from tests.support.statements import recorded_statements

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = deliveries.RetryPolicy(base_ms=1_000, window_ms=30_000)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def client() -> Iterator[WebhookClient]:
    made = WebhookClient(allow_private=True, read_timeout_ms=1_000)
    yield made
    made.close()


def _emit(session: Session, tenant_id: object, key: str, kind: str = "job_run.failed") -> None:
    events.emit(session, tenant_id, kind, {"key": key}, dedup_key=key, now=T0)  # type: ignore[arg-type]


def test_fan_out_reaches_the_subscribed_enabled_endpoints_of_the_events_tenant(
    preset_session: Session, preset_db: Engine
) -> None:
    # Given two tenants and endpoints: subscribed, wildcard, other type, disabled, other tenant
    a, b = f.tenant(preset_session, "a"), f.tenant(preset_session, "b")
    url = "https://hooks.example/x"
    subscribed, _ = endpoints.add_endpoint(preset_session, a.id, url, ["job_run.failed"])
    wildcard, _ = endpoints.add_endpoint(preset_session, a.id, url, "*")
    endpoints.add_endpoint(preset_session, a.id, url, "email.bounced filing.overdue")
    disabled, _ = endpoints.add_endpoint(preset_session, a.id, url, "*")
    endpoints.set_enabled(preset_session, disabled.id, False, reason="test")
    endpoints.add_endpoint(preset_session, b.id, url, "*")
    for n in range(3):
        _emit(preset_session, a.id, f"k{n}")
    _emit(preset_session, a.id, "k0")  # the same event again: nothing new
    preset_session.commit()

    # When the dispatcher fans out, in two statements
    with recorded_statements(preset_db) as seen:
        made = deliveries.fan_out(preset_session, now=T0)
    assert len(seen) == 2

    # Then each of the 3 events goes to the subscribed and the wildcard endpoint only
    assert made == 6
    d = tables_of(preset_session).webhook_deliveries.c
    targets = preset_session.execute(select(d.endpoint_id, d.status)).all()
    assert sorted({row.endpoint_id for row in targets}) == sorted([subscribed.id, wildcard.id])
    assert {row.status for row in targets} == {"pending"}
    assert deliveries.fan_out(preset_session, now=T0) == 0  # each event is fanned out once


def test_fan_out_statements_do_not_grow_with_events(
    preset_session: Session, preset_db: Engine
) -> None:
    t = f.tenant(preset_session)
    endpoints.add_endpoint(preset_session, t.id, "https://hooks.example/x", "*")
    counts = []
    for batch in (2, 40):
        for n in range(batch):
            _emit(preset_session, t.id, f"{batch}:{n}")
        preset_session.commit()
        with recorded_statements(preset_db) as seen:
            assert deliveries.fan_out(preset_session, now=T0) == batch
        counts.append(len(seen))
    assert counts == [2, 2]


def _one_delivery(session: Session, url: str) -> tuple[object, str, int]:
    t = f.tenant(session)
    f.member(session, t, Role.OWNER, email="owner@example.com")
    f.member(session, t, Role.ADMIN)
    _, secret = endpoints.add_endpoint(session, t.id, url, "*")
    _emit(session, t.id, "first")
    deliveries.fan_out(session, now=T0)
    session.commit()
    [delivery_id] = deliveries.due_deliveries(session, now=T0)
    return t.id, secret, delivery_id


def test_an_attempt_is_signed_and_recorded(
    preset_db: Engine, receiver: WebhookReceiver, client: WebhookClient
) -> None:
    with Session(preset_db) as session:
        _, secret, delivery_id = _one_delivery(session, receiver.url())

    result = attempt_delivery(preset_db, client, delivery_id, policy=POLICY, now=T0)

    # The receiver verifies the signature with an independent implementation
    [request] = receiver.requests
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["type"] == "job_run.failed"
    assert body["data"] == {"key": "first"}
    assert request.headers["webhook-id"].startswith("msg_")
    # And the delivery succeeded, with its attempt recorded
    assert result.outcome == deliveries.Outcome("succeeded")
    with Session(preset_db) as session:
        delivery = deliveries.get_delivery(session, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "succeeded", 1, 200,
        )  # fmt: skip
        [attempt] = deliveries.attempts_of(session, delivery_id)
        assert (attempt.status_code, attempt.response_body, attempt.error) == (200, "ok", None)
        assert attempt.latency_ms > 0
    # A second attempt of a finished delivery does nothing
    assert attempt_delivery(preset_db, client, delivery_id, policy=POLICY).delivery is None


def test_failures_retry_with_backoff_then_disable_the_endpoint_and_tell_the_owners(
    preset_db: Engine, receiver: WebhookReceiver, client: WebhookClient
) -> None:
    # Given a receiver that always answers 500, and a second pending delivery
    receiver.behaviour = "error"
    with Session(preset_db) as session:
        tenant_id, _, delivery_id = _one_delivery(session, receiver.url())
        _emit(session, tenant_id, "second")
        deliveries.fan_out(session, now=T0 + timedelta(hours=1))
        session.commit()

    # When it fails at T0, then at each retry (1 s, 4 s, 16 s later: x4 each time)
    now, retries = T0, []
    while True:
        result = attempt_delivery(preset_db, client, delivery_id, policy=POLICY, now=now)
        assert result.outcome is not None
        if result.outcome.retry_at is None:
            break
        retries.append(result.outcome.retry_at - now)
        now = result.outcome.retry_at
    assert retries == [timedelta(seconds=1), timedelta(seconds=4), timedelta(seconds=16)]

    # Then, the 30 s window spent, the delivery fails for good and its endpoint is disabled
    outcome = result.outcome
    assert (outcome.status, outcome.endpoint_disabled) == ("failed", True)
    assert outcome.owners == [("owner@example.com", outcome.owners[0][1])]
    with Session(preset_db) as session:
        assert [a.status_code for a in deliveries.attempts_of(session, delivery_id)] == [500] * 4
        [endpoint] = endpoints.list_endpoints(session, tenant_id)
        assert endpoint.enabled is False
        assert "retry window" in (endpoint.disabled_reason or "")
        # the other pending delivery of that endpoint failed with it
        statuses = deliveries.counts_by_status(session, tenant_id)
        assert statuses == {"pending": 0, "sending": 0, "succeeded": 0, "failed": 2}
        # and the owner (only) has an in-app notification
        n = tables_of(session).notifications.c
        kinds = session.execute(select(n.kind, n.user_id)).all()
        assert [k.kind for k in kinds] == ["webhook_endpoint_disabled"]


def test_replay_of_one_and_of_all_failed_deliveries(
    gcmc_db: Engine, receiver: WebhookReceiver, client: WebhookClient
) -> None:
    receiver.behaviour = "error"
    policy = deliveries.RetryPolicy(base_ms=1_000, window_ms=0)  # give up at once
    with Session(gcmc_db) as session:
        tenant_id, _, first = _one_delivery(session, receiver.url())
        _emit(session, tenant_id, "second")
        deliveries.fan_out(session, now=T0)
        session.commit()
    assert attempt_delivery(gcmc_db, client, first, policy=policy, now=T0).outcome
    with Session(gcmc_db) as session:
        [endpoint] = endpoints.list_endpoints(session, tenant_id)
        endpoints.set_enabled(session, endpoint.id, True)
        # One delivery replayed: pending now, then delivered
        assert deliveries.replay(session, delivery_id=first, now=T0) == [first]
        session.commit()
    receiver.behaviour = "ok"
    assert attempt_delivery(gcmc_db, client, first, policy=policy, now=T0).outcome == (
        deliveries.Outcome("succeeded")
    )
    with Session(gcmc_db) as session:
        # All failed ones of the tenant: the other delivery
        replayed = deliveries.replay(session, tenant_id=tenant_id, now=T0)
        assert len(replayed) == 1
        assert first not in replayed
        session.commit()
    assert attempt_delivery(gcmc_db, client, replayed[0], policy=policy, now=T0).outcome
    assert [r.headers["webhook-id"] for r in receiver.requests][1] != (
        receiver.requests[2].headers["webhook-id"]
    )
    with Session(gcmc_db) as session, pytest.raises(UnknownWebhookEndpoint):
        deliveries.replay(session, delivery_id=10_000_000)


def test_a_test_delivery_goes_to_its_endpoint_only(
    gcmc_db: Engine, receiver: WebhookReceiver, client: WebhookClient
) -> None:
    with Session(gcmc_db) as session:
        t = f.tenant(session)
        target, _ = endpoints.add_endpoint(session, t.id, receiver.url("/target"), "*")
        endpoints.add_endpoint(session, t.id, receiver.url("/other"), "*")
        delivery_id = deliveries.create_test_delivery(session, target.id, now=T0)
        assert deliveries.fan_out(session, now=T0) == 0
        session.commit()
    assert attempt_delivery(gcmc_db, client, delivery_id, policy=POLICY, now=T0).outcome
    assert [r.path for r in receiver.requests] == ["/target"]
    assert json.loads(receiver.requests[0].body)["type"] == "webhook.test"


def test_bad_endpoints_are_refused_with_a_clear_error(gcmc_session: Session) -> None:
    preset_session = gcmc_session
    t = f.tenant(preset_session)
    with pytest.raises(InvalidPayload, match="http:// or https://"):
        endpoints.add_endpoint(preset_session, t.id, "ftp://hooks.example", "*")
    with pytest.raises(InvalidPayload, match=r"unknown event type.*nope"):
        endpoints.add_endpoint(preset_session, t.id, "https://hooks.example", "nope")
    missing = t.id + 1_000 if isinstance(t.id, int) else f"{t.id}x"
    with pytest.raises(InvalidPayload, match="no tenant"):
        endpoints.add_endpoint(preset_session, missing, "https://hooks.example", "*")
    endpoint, secret = endpoints.add_endpoint(preset_session, t.id, "https://h.example", "*")
    assert secret.startswith("whsec_")
    assert secret not in repr(endpoint)
    endpoints.remove_endpoint(preset_session, endpoint.id)
    with pytest.raises(UnknownWebhookEndpoint):
        endpoints.get_endpoint(preset_session, endpoint.id)


def test_the_daily_jobs_emit_their_events_once(preset_session: Session) -> None:
    from gcmc_jobs.services.webhook_events import emit_document_expiring, emit_filing_reminders

    today = date(2026, 3, 10)
    t = f.tenant(preset_session)
    c = f.client(preset_session, t)
    f.document(preset_session, c, expiry=today + timedelta(days=3))
    f.document(preset_session, c, expiry=today + timedelta(days=30))
    f.filing(preset_session, c, due=today + timedelta(days=2))
    f.filing(preset_session, c, due=today - timedelta(days=2))
    assert emit_document_expiring(preset_session, t.id, today) == 1
    assert emit_filing_reminders(preset_session, t.id, today) == 2
    assert emit_document_expiring(preset_session, t.id, today) == 0  # once per version
    assert emit_filing_reminders(preset_session, t.id, today + timedelta(days=1)) == 0
    e = tables_of(preset_session).webhook_events.c
    rows = preset_session.execute(select(e.event_type, e.payload).order_by(e.id)).all()
    assert [row.event_type for row in rows] == [
        "document.expiring", "filing.due_soon", "filing.overdue",
    ]  # fmt: skip
    assert rows[2].payload["due_date"] == (today - timedelta(days=2)).isoformat()
    assert rows[0].payload["client_id"] == c.id

"""``send_sms`` and the SMS alerts of the daily jobs, end to end: validated in the caller, on
its own queue, rate-limited per number, texted once through a local server answering as
Twilio, an invalid stored number failing its SMS alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import dramatiq
import pytest
from sqlalchemy import Engine, insert

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors import send_sms
from gcmc_jobs.actors.schedule import digests_of
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.enums import NotificationCategory, Role, SmsStatus
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.errors import InvalidPayload, InvalidPhoneNumber
from gcmc_jobs.middleware import RateLimits
from gcmc_jobs.middleware.stores import SqlDeadLetterStore
from gcmc_jobs.middleware.stores.dead_letters import DeadLetterFilter
from gcmc_jobs.runtime import current
from gcmc_jobs.scheduling.runner import run_for_tenant
from gcmc_jobs.sending import is_duplicate, queue_sms
from gcmc_jobs.services import sms_log
from gcmc_jobs.sms.opt_ins import opt_in
from gcmc_jobs.testing import TwilioSink, capture_events
from tests import factories as f

TO = "+14155552671"


def _log(engine: Engine, key: str) -> sms_log.SmsLogEntry:
    with engine.connect() as connection:
        entry = sms_log.get(connection, key)
    assert entry is not None
    return entry


def test_an_sms_goes_on_its_own_queue_keyed_and_rate_limited_by_number(
    gcmc_broker: dramatiq.Broker,
    gcmc_db: Engine,
    gcmc_join: Callable[..., None],
    twilio_server: TwilioSink,
) -> None:
    message = queue_sms("+1 (415) 555-2671", "Your filing is due.", dedup_key="sms-1")

    assert message.queue_name == queues.SMS == "gcmc_sms"
    assert message.kwargs["to"] == TO
    assert message.options["rate_limit_key"] == TO
    assert message.options["rate_limit_class"] == "default"
    gcmc_join()
    assert [r.form["To"] for r in twilio_server.requests] == [TO]
    assert twilio_server.requests[0].form["Body"] == "Your filing is due."
    assert _log(gcmc_db, "sms-1").status is SmsStatus.SENT
    # The same key again is a duplicate: not enqueued, nothing texted
    assert is_duplicate(queue_sms(TO, "Your filing is due.", dedup_key="sms-1"))
    gcmc_join()
    assert len(twilio_server.requests) == 1


def test_bad_input_is_refused_in_the_caller_and_nothing_is_enqueued(
    gcmc_broker: dramatiq.Broker,
) -> None:
    cases: list[tuple[str, str, type[Exception]]] = [
        ("555-0100", "hi", InvalidPhoneNumber),
        ("+44123", "hi", InvalidPhoneNumber),
        (TO, "", InvalidPayload),
        (TO, "x" * 1_601, InvalidPayload),
        (TO, "a\x00b", InvalidPayload),
    ]
    for to, body, error in cases:
        with pytest.raises(error):
            queue_sms(to, body)
    assert gcmc_broker.queues[queues.SMS].qsize() == 0


def test_sms_over_the_per_number_limit_are_deferred_not_dropped(
    gcmc_broker: dramatiq.Broker,
    gcmc_worker: dramatiq.Worker,
    twilio_server: TwilioSink,
) -> None:
    limits = next(m for m in gcmc_broker.middleware if isinstance(m, RateLimits))
    limits.limit = 2
    other = "+14155552672"
    with capture_events() as events:
        for n in range(3):
            send_sms.send(kind="custom", to=TO, body=f"message {n}")
        send_sms.send(kind="custom", to=other, body="hello")
        gcmc_broker.queues[queues.SMS].join()

    # Two to the number now, the third deferred to the next window (held on the delay
    # queue, not failed), the other number unaffected
    texted = [r.form["To"] for r in twilio_server.requests]
    assert sorted(texted) == sorted([TO, TO, other])
    limited = [e for e in events if e["event"] == "rate_limited"]
    assert len(limited) == 1
    assert limited[0]["delay_ms"] > 0
    assert not [e for e in events if e["event"] in ("retried", "failed", "dead_lettered")]


@pytest.fixture
def opted_in_firm(gcmc_db: Engine) -> dict[str, object]:
    """An owner opted in to documents by SMS, a manager whose stored number is invalid (put
    there by a host, bypassing the check), and two documents on warning days today."""
    today = date.today()
    with session_scope(gcmc_db) as session:
        tenant = f.tenant(session, "Acme CPA")
        owner = f.member(session, tenant, Role.OWNER)
        manager = f.member(session, tenant, Role.MANAGER)
        client = f.client(session, tenant, name="Jane Doe")
        f.document(session, client, expiry=today + timedelta(days=7), title="Passport")
        f.document(session, client, expiry=today + timedelta(days=30), title="Licence")
        connection = session.connection()
        opt_in(connection, tenant_id=tenant.id, user_id=owner.id, phone=TO)
        connection.execute(
            insert(tables_of(connection).sms_opt_ins).values(
                tenant_id=tenant.id,
                user_id=manager.id,
                category=NotificationCategory.DOCUMENTS,
                phone="+44123",
            )
        )
    return {"tenant": tenant.id, "owner": owner.id, "manager": manager.id, "today": today}


def test_the_daily_job_texts_its_alert_once_and_an_invalid_number_fails_alone(
    gcmc_broker: dramatiq.Broker,
    gcmc_db: Engine,
    gcmc_join: Callable[..., None],
    twilio_server: TwilioSink,
    opted_in_firm: dict[str, object],
) -> None:
    tenant_id, today = opted_in_firm["tenant"], opted_in_firm["today"]
    sender = digests_of(current())

    run = run_for_tenant(
        gcmc_db, "document_expiry_emails", tenant_id, local_date=today, send_digests=sender
    )
    gcmc_join(fail_fast=False)
    again = run_for_tenant(
        gcmc_db,
        "document_expiry_emails",
        tenant_id,
        local_date=today,
        force=True,
        send_digests=sender,
    )
    gcmc_join(fail_fast=False)

    # Two SMS alerts queued (the owner's, the manager's). On the forced rerun the owner's,
    # sent, is a duplicate; the manager's, failed, is tried again (a failure for good
    # releases its key, as for email: a rerun or a replay may send it) and fails again.
    assert (run.stats["sms_recipients"], run.stats["sms_queued"]) == (2, 2)
    assert (again.stats["sms_queued"], again.stats["sms_skipped_duplicates"]) == (1, 1)
    # The owner's was texted once, summarising both documents
    [request] = twilio_server.requests
    assert request.form["To"] == TO
    assert request.form["Body"] == (
        "Acme CPA: 2 documents expire soon. Next: Passport (Jane Doe) in 7 days. "
        "https://portal.gcmc.example/documents"
    )
    owner_key = f"sms:digest:document_expiry_warning:{tenant_id}:{opted_in_firm['owner']}:{today}"
    assert _log(gcmc_db, owner_key).status is SmsStatus.SENT
    # The manager's failed for good, with the reason, and is in the dead letters
    manager_key = (
        f"sms:digest:document_expiry_warning:{tenant_id}:{opted_in_firm['manager']}:{today}"
    )
    failed = _log(gcmc_db, manager_key)
    assert failed.status is SmsStatus.FAILED
    assert "'+44123' is not a valid number" in (failed.error or "")
    letters = SqlDeadLetterStore(gcmc_db).find(DeadLetterFilter(actor="send_sms"))
    assert len(letters) == 2
    assert all(letter.error_type.endswith("InvalidPhoneNumber") for letter in letters)
    assert {letter.kwargs["dedup_key"] for letter in letters} == {manager_key}
    assert failed.attempts == 2

"""Delivering one SMS: once per dedup key (``sms_log``), never to a suppressed number, an
invalid number failing that SMS alone for good. On both mappings (``preset_db``), through a
real local server answering as Twilio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import SmsStatus, SmsSuppressionReason
from gcmc_jobs.db.tables import Id
from gcmc_jobs.errors import InvalidPhoneNumber, SmsRejected, TransientDeliveryError, UnknownTenant
from gcmc_jobs.services import sms_log
from gcmc_jobs.sms.delivery import SmsOutcome, deliver_sms
from gcmc_jobs.sms.transports import TwilioTransport
from gcmc_jobs.testing import TwilioSink
from tests import factories as f

TO = "+14155552671"


@pytest.fixture
def transport(twilio_server: TwilioSink) -> Iterator[TwilioTransport]:
    made = TwilioTransport(
        account_sid=twilio_server.account_sid,
        auth_token=twilio_server.auth_token,
        sender="+15005550006",
        base_url=twilio_server.base_url,
    )
    yield made
    made.close()


@pytest.fixture
def tenant_id(preset_db: Engine) -> Id:
    with Session(preset_db) as session:
        tenant = f.tenant(session, "Acme")
        session.commit()
    return tenant.id


def _entry(engine: Engine, key: str) -> sms_log.SmsLogEntry:
    with engine.connect() as connection:
        entry = sms_log.get(connection, key)
    assert entry is not None
    return entry


def test_an_sms_is_sent_once_per_key_and_an_invalid_number_fails_alone(
    preset_db: Engine, transport: TwilioTransport, twilio_server: TwilioSink, tenant_id: Id
) -> None:
    first = deliver_sms(
        preset_db, transport, kind="k", to=TO, body="hi", dedup_key="key-1", tenant_id=tenant_id
    )
    again = deliver_sms(
        preset_db, transport, kind="k", to=TO, body="hi", dedup_key="key-1", tenant_id=tenant_id
    )

    assert first.outcome is SmsOutcome.SENT
    assert again.outcome is SmsOutcome.ALREADY_DONE
    assert len(twilio_server.requests) == 1
    entry = _entry(preset_db, "key-1")
    assert entry.status is SmsStatus.SENT
    assert entry.provider_message_id == first.provider_message_id
    assert (entry.to_phone, entry.body, entry.tenant_id, entry.attempts) == (TO, "hi", tenant_id, 1)
    assert entry.sent_at is not None

    # An invalid number fails that SMS alone, for good, before any request
    with pytest.raises(InvalidPhoneNumber, match="not a valid number"):
        deliver_sms(preset_db, transport, kind="k", to="+44123", body="hi", dedup_key="bad")
    assert len(twilio_server.requests) == 1
    bad = _entry(preset_db, "bad")
    assert bad.status is SmsStatus.FAILED
    assert "'+44123' is not a valid number of its country's numbering plan" in (bad.error or "")


def test_a_number_the_provider_refuses_for_good_is_suppressed_and_never_texted_again(
    preset_db: Engine, transport: TwilioTransport, twilio_server: TwilioSink
) -> None:
    twilio_server.invalid(TO)
    with pytest.raises(SmsRejected):
        deliver_sms(preset_db, transport, kind="k", to=TO, body="hi", dedup_key="a")
    later = deliver_sms(preset_db, transport, kind="k", to=TO, body="hi", dedup_key="b")

    assert _entry(preset_db, "a").status is SmsStatus.FAILED
    assert "21211" in (_entry(preset_db, "a").error or "")
    assert later.outcome is SmsOutcome.SUPPRESSED
    assert len(twilio_server.requests) == 1
    entry = _entry(preset_db, "b")
    assert (entry.status, entry.error) == (
        SmsStatus.SUPPRESSED,
        "number suppressed (permanent_error)",
    )
    with preset_db.connect() as connection:
        assert sms_log.suppression_reason(connection, TO) is SmsSuppressionReason.PERMANENT_ERROR

    # A STOP reply (21610) suppresses its number as "stop"
    stopped = "+14155552672"
    twilio_server.stopped(stopped)
    with pytest.raises(SmsRejected):
        deliver_sms(preset_db, transport, kind="k", to=stopped, body="hi", dedup_key="c")
    with preset_db.connect() as connection:
        assert sms_log.suppression_reason(connection, stopped) is SmsSuppressionReason.STOP


def test_a_transient_error_keeps_the_sms_queued_until_the_last_attempt(
    preset_db: Engine, transport: TwilioTransport, twilio_server: TwilioSink
) -> None:
    twilio_server.script((503, None), (429, 20429))
    with pytest.raises(TransientDeliveryError):
        deliver_sms(
            preset_db, transport, kind="k", to=TO, body="hi", dedup_key="t", final_attempt=False
        )
    assert _entry(preset_db, "t").status is SmsStatus.QUEUED
    with pytest.raises(TransientDeliveryError):
        deliver_sms(preset_db, transport, kind="k", to=TO, body="hi", dedup_key="t")
    failed = _entry(preset_db, "t")
    assert (failed.status, failed.attempts) == (SmsStatus.FAILED, 2)
    # A failed SMS may be replayed: the dead letter's replay sends it.
    replay = deliver_sms(preset_db, transport, kind="k", to=TO, body="hi", dedup_key="t")
    assert replay.outcome is SmsOutcome.SENT
    assert _entry(preset_db, "t").status is SmsStatus.SENT


def test_an_unknown_tenant_is_refused_and_nothing_is_recorded(
    preset_db: Engine, transport: TwilioTransport, twilio_server: TwilioSink, tenant_id: Id
) -> None:
    missing: Id = 999_999 if isinstance(tenant_id, int) else "no-such-tenant"
    with pytest.raises(UnknownTenant):
        deliver_sms(
            preset_db, transport, kind="k", to=TO, body="hi", dedup_key="u", tenant_id=missing
        )
    assert twilio_server.requests == []
    with preset_db.connect() as connection:
        assert sms_log.get(connection, "u") is None


def test_concurrent_deliveries_of_one_key_text_it_once(
    gcmc_db: Engine, transport: TwilioTransport, twilio_server: TwilioSink
) -> None:
    # Given eight workers handed the same SMS at once (a redelivery, a duplicate message)
    from concurrent.futures import ThreadPoolExecutor

    def deliver(_: int) -> SmsOutcome:
        return deliver_sms(gcmc_db, transport, kind="k", to=TO, body="hi", dedup_key="race").outcome

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, range(8)))

    # Then one texts it, the seven others find it sent: the row lock of the claim
    assert sorted(outcomes) == sorted([SmsOutcome.SENT] + [SmsOutcome.ALREADY_DONE] * 7)
    assert len(twilio_server.requests) == 1
    assert _entry(gcmc_db, "race").attempts == 1

"""The Twilio transport against a real local HTTP server answering as Twilio's Messages API
(:class:`~gcmc_jobs.testing.TwilioSink`): the request it makes, and how it reads each answer."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gcmc_jobs.errors import SmsRejected, TransientDeliveryError
from gcmc_jobs.settings import Settings
from gcmc_jobs.sms.transports import SmsMessage, TwilioTransport, from_settings
from gcmc_jobs.testing import TwilioSink, free_port

TO = "+14155552671"


@pytest.fixture
def transport(twilio_server: TwilioSink) -> Iterator[TwilioTransport]:
    made = TwilioTransport(
        account_sid=twilio_server.account_sid,
        auth_token=twilio_server.auth_token,
        sender="+15005550006",
        base_url=twilio_server.base_url,
        timeout_ms=5_000,
    )
    yield made
    made.close()


def test_a_message_is_a_form_post_with_basic_auth_to_the_accounts_messages_resource(
    twilio_server: TwilioSink, transport: TwilioTransport
) -> None:
    sid = transport.send(SmsMessage(TO, "Acme: 2 documents expire soon. é ✓", kind="k"))

    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    [request] = twilio_server.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.content_type == "application/x-www-form-urlencoded"
    assert (request.username, request.password) == (
        twilio_server.account_sid,
        twilio_server.auth_token,
    )
    assert request.form == {
        "To": TO,
        "From": "+15005550006",
        "Body": "Acme: 2 documents expire soon. é ✓",
    }


def test_a_messaging_service_sender_is_sent_as_messaging_service_sid(
    twilio_server: TwilioSink,
) -> None:
    transport = TwilioTransport(
        account_sid=twilio_server.account_sid,
        auth_token=twilio_server.auth_token,
        sender="MG" + "1" * 32,
        base_url=twilio_server.base_url,
    )
    try:
        transport.send(SmsMessage(TO, "hello"))
    finally:
        transport.close()
    assert twilio_server.requests[0].form == {
        "To": TO,
        "MessagingServiceSid": "MG" + "1" * 32,
        "Body": "hello",
    }


def test_an_invalid_number_21211_is_refused_for_good_and_blames_the_number(
    twilio_server: TwilioSink, transport: TwilioTransport
) -> None:
    twilio_server.invalid(TO)
    with pytest.raises(SmsRejected) as raised:
        transport.send(SmsMessage(TO, "hello"))
    assert (raised.value.status, raised.value.code) == (400, 21211)
    assert raised.value.suppress == "permanent_error"
    assert "Twilio 400 error 21211" in str(raised.value)
    assert TO in str(raised.value)


def test_a_stop_reply_21610_is_refused_for_good_as_a_stop(
    twilio_server: TwilioSink, transport: TwilioTransport
) -> None:
    twilio_server.stopped(TO)
    with pytest.raises(SmsRejected) as raised:
        transport.send(SmsMessage(TO, "hello"))
    assert (raised.value.code, raised.value.suppress) == (21610, "stop")


def test_a_bad_token_is_refused_for_good_without_blaming_the_number_or_showing_it(
    twilio_server: TwilioSink,
) -> None:
    transport = TwilioTransport(
        account_sid=twilio_server.account_sid,
        auth_token="wrong-secret-token",
        sender="+15005550006",
        base_url=twilio_server.base_url,
    )
    try:
        with pytest.raises(SmsRejected) as raised:
            transport.send(SmsMessage(TO, "hello"))
    finally:
        transport.close()
    assert (raised.value.status, raised.value.code, raised.value.suppress) == (401, 20003, None)
    assert "wrong-secret-token" not in str(raised.value)
    assert "wrong-secret-token" not in repr(transport)


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, None), (503, None)])
def test_too_many_requests_and_server_errors_are_transient(
    twilio_server: TwilioSink, transport: TwilioTransport, status: int, code: int | None
) -> None:
    twilio_server.script((status, code))
    with pytest.raises(TransientDeliveryError, match=f"Twilio {status}"):
        transport.send(SmsMessage(TO, "hello"))
    # The next answer is a normal one: the same transport sends again.
    assert transport.send(SmsMessage(TO, "hello")).startswith("SM")
    assert len(twilio_server.messages) == 1


def test_a_provider_that_cannot_be_reached_is_transient() -> None:
    transport = TwilioTransport(
        account_sid="AC" + "0" * 32,
        auth_token="t",
        sender="+15005550006",
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout_ms=2_000,
    )
    try:
        with pytest.raises(TransientDeliveryError, match="could not be reached"):
            transport.send(SmsMessage(TO, "hello"))
    finally:
        transport.close()


def test_connections_are_reused_across_messages(
    twilio_server: TwilioSink, transport: TwilioTransport
) -> None:
    for n in range(3):
        transport.send(SmsMessage(TO, f"message {n}"))
    assert twilio_server.connections == 1


def test_settings_build_the_twilio_transport_and_refuse_it_without_credentials(
    twilio_server: TwilioSink,
) -> None:
    from gcmc_jobs.errors import ConfigurationError

    built = from_settings(Settings(**twilio_server.settings()))
    try:
        assert isinstance(built, TwilioTransport)
        assert built.url.startswith(twilio_server.base_url + "/2010-04-01/Accounts/AC")
    finally:
        built.close()
    with pytest.raises(ConfigurationError, match="GCMC_JOBS_SMS_TWILIO_ACCOUNT_SID"):
        from_settings(Settings(sms_url="twilio://", sms_from="+15005550006"))
    with pytest.raises(ConfigurationError, match="GCMC_JOBS_SMS_FROM"):
        from_settings(
            Settings(sms_url="twilio://", sms_twilio_account_sid="AC1", sms_twilio_auth_token="t")
        )

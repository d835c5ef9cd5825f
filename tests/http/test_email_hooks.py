"""``POST /hooks/email/{provider}`` (issue 13, item 1): each provider's good signature is
applied, a missing or bad one refused and logged and never applied, a redelivered event
recorded once. Requests are signed here with keys the test generates; the SNS signing
certificate is served over https by the test's own server."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.http import create_app
from gcmc_jobs.services import email_log
from gcmc_jobs.settings import Settings
from gcmc_jobs.testing.logs import capture_events
from tests.support.signing import (
    CertServer,
    SnsSigner,
    mailgun_body,
    sendgrid_keys,
    sendgrid_sign,
    serve_certificates,
)

MAILGUN_KEY = "mailgun-signing-key-of-the-test"
POSTMARK = ("postmark", "pm-password-of-the-test")
POSTMARK_TOKEN = "pm-token-of-the-test"
SENDGRID_KEY, SENDGRID_PUBLIC = sendgrid_keys()
SIGNER = SnsSigner()


@pytest.fixture(scope="module")
def cert_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertServer]:
    """The https server of the SNS certificate, for the module (its keys take a while)."""
    files = {"/SimpleNotificationService.pem": SIGNER.certificate_pem, "/confirm": b"ok"}
    with serve_certificates(tmp_path_factory.mktemp("certs"), files) as server:
        yield server


@pytest.fixture
def certs(cert_server: CertServer) -> CertServer:
    """``cert_server``, its list of requests emptied for the test."""
    cert_server.hits.clear()
    return cert_server


@pytest.fixture
def hooks(
    gcmc_settings: Settings, gcmc_broker: dramatiq.Broker, certs: CertServer
) -> Iterator[TestClient]:
    """A client of the app with every provider configured (no admin token sent)."""
    settings = gcmc_settings.model_copy(
        update={
            "email_hook_ses_cert_hosts": ["localhost"],
            "email_hook_ses_ca_file": str(certs.ca_file),
            "email_hook_postmark_credentials": ":".join(POSTMARK),
            "email_hook_postmark_token": POSTMARK_TOKEN,
            "email_hook_sendgrid_public_key": SENDGRID_PUBLIC,
            "email_hook_mailgun_signing_key": MAILGUN_KEY,
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _suppressed(engine: Engine) -> dict[str, str]:
    s = tables_of(engine).email_suppressions
    with engine.connect() as connection:
        rows = connection.execute(select(s.c.address, s.c.reason))
        return {row.address: row.reason for row in rows}


def _events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(select(func.count()).select_from(tables_of(engine).email_events)) or 0
        )


# -- SES through SNS --------------------------------------------------------------------------


def _sns(certs: CertServer, message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Message": json.dumps(message),
        "Timestamp": "2026-12-02T08:00:00.000Z",
        "SigningCertURL": f"{certs.url}/SimpleNotificationService.pem",
        **fields,
    }


SES_BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {"emailAddress": "Gone@Example.com", "diagnosticCode": "smtp; 550 5.1.1 unknown"}
        ],
        "timestamp": "2026-12-02T07:59:59.000Z",
    },
    "mail": {
        "messageId": "0100018c-ses",
        "headers": [{"name": "X-GCMC-Dedup-Key", "value": "welcome:ses"}],
        "commonHeaders": {"messageId": "<welcome-ses@gcmc.example>"},
    },
}


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_ses_bounce_suppresses_and_is_recorded_once(
    hooks: TestClient, gcmc_db: Engine, certs: CertServer, version: str
) -> None:
    with gcmc_db.begin() as connection:
        email_log.ensure_queued(
            connection, dedup_key="welcome:ses", to_address="gone@example.com", kind="welcome",
            subject="Welcome",
        )  # fmt: skip
    body = SIGNER.sign(_sns(certs, SES_BOUNCE), version=version)

    first = hooks.post("/hooks/email/ses", json=body)
    again = hooks.post("/hooks/email/ses", json=body)

    assert first.status_code == 200, first.text
    assert first.json()["suppressed"] == {"gone@example.com": "hard_bounce"}
    assert again.json() == {"received": 1, "recorded": 0, "duplicates": 1, "suppressed": {}}
    assert _suppressed(gcmc_db) == {"gone@example.com": "hard_bounce"}
    # The certificate was fetched once, then cached
    assert certs.hits.count("/SimpleNotificationService.pem") <= 1


def test_an_ses_message_with_a_bad_or_missing_signature_is_refused_and_logged(
    hooks: TestClient, gcmc_db: Engine, certs: CertServer
) -> None:
    signed = SIGNER.sign(_sns(certs, SES_BOUNCE))
    tampered = {**signed, "Message": signed["Message"].replace("Gone@", "Other@")}
    unsigned = {k: v for k, v in signed.items() if k != "Signature"}
    other_host = SIGNER.sign(
        _sns(certs, SES_BOUNCE, SigningCertURL="https://evil.example/cert.pem")
    )
    plain_http = SIGNER.sign(
        _sns(certs, SES_BOUNCE, SigningCertURL=certs.url.replace("https", "http") + "/x.pem")
    )

    with capture_events() as events:
        answers = [
            hooks.post("/hooks/email/ses", json=body).status_code
            for body in (tampered, unsigned, other_host, plain_http)
        ]

    assert answers == [403, 401, 403, 403]
    refusals = [e for e in events if e["event"] == "email_hook_refused"]
    assert [(e["provider"], e["status"]) for e in refusals] == [
        ("ses", 403), ("ses", 401), ("ses", 403), ("ses", 403)
    ]  # fmt: skip
    assert refusals[0]["reason"] == "wrong SNS signature"
    assert _events(gcmc_db) == 0
    assert _suppressed(gcmc_db) == {}
    assert "evil.example" not in certs.hits


def test_an_ses_subscription_confirmation_is_verified_then_confirmed(
    hooks: TestClient, certs: CertServer
) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "tok",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Message": "You have chosen to subscribe...",
        "SubscribeURL": f"{certs.url}/confirm?Action=ConfirmSubscription&Token=tok",
        "Timestamp": "2026-12-02T08:00:00.000Z",
        "SigningCertURL": f"{certs.url}/SimpleNotificationService.pem",
    }
    forged = {**SIGNER.sign(confirmation), "SubscribeURL": f"{certs.url}/confirm?Token=other"}

    assert hooks.post("/hooks/email/ses", json=forged).status_code == 403
    assert not any(h.startswith("/confirm") for h in certs.hits)
    answer = hooks.post("/hooks/email/ses", json=SIGNER.sign(confirmation))
    assert answer.json() == {"confirmed": True}
    assert "/confirm?Action=ConfirmSubscription&Token=tok" in certs.hits


# -- Postmark ---------------------------------------------------------------------------------

POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "Email": "gone@example.com",
    "BouncedAt": "2026-12-02T08:00:00Z",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
}


def test_postmark_with_basic_auth_or_its_token_is_applied_and_otherwise_refused(
    hooks: TestClient, gcmc_db: Engine
) -> None:
    wrong = base64.b64encode(b"postmark:nope").decode()
    refused = [
        hooks.post("/hooks/email/postmark", json=POSTMARK_BOUNCE).status_code,
        hooks.post(
            "/hooks/email/postmark",
            json=POSTMARK_BOUNCE,
            headers={"Authorization": f"Basic {wrong}"},
        ).status_code,
        hooks.post(
            "/hooks/email/postmark", json=POSTMARK_BOUNCE, headers={"X-Webhook-Token": "nope"}
        ).status_code,
    ]
    assert refused == [401, 403, 403]
    assert _events(gcmc_db) == 0

    by_auth = hooks.post("/hooks/email/postmark", json=POSTMARK_BOUNCE, auth=POSTMARK)
    complaint = {**POSTMARK_BOUNCE, "RecordType": "SpamComplaint", "Type": "SpamComplaint",
                 "ID": 2, "Email": "angry@example.com"}  # fmt: skip
    by_token = hooks.post(
        "/hooks/email/postmark", json=complaint, headers={"X-Webhook-Token": POSTMARK_TOKEN}
    )
    assert by_auth.json()["suppressed"] == {"gone@example.com": "hard_bounce"}
    assert by_token.json()["suppressed"] == {"angry@example.com": "complaint"}


# -- SendGrid ---------------------------------------------------------------------------------


def _sendgrid_events() -> bytes:
    return json.dumps(
        [
            {
                "email": "gone@example.com",
                "timestamp": 1764662400,
                "event": "bounce",
                "type": "bounce",
                "status": "5.1.1",
                "sg_event_id": "sg-1",
                "smtp-id": "<x@gcmc.example>",
            },
            {
                "email": "later@example.com",
                "timestamp": 1764662400,
                "event": "deferred",
                "sg_event_id": "sg-2",
            },
            {
                "email": "seen@example.com",
                "timestamp": 1764662400,
                "event": "open",
                "sg_event_id": "sg-3",
            },
        ]
    ).encode()


def test_a_sendgrid_batch_signed_with_ecdsa_is_applied_and_a_bad_one_refused(
    hooks: TestClient, gcmc_db: Engine
) -> None:
    body = _sendgrid_events()
    now = str(int(time.time()))
    good = sendgrid_sign(SENDGRID_KEY, body, now)
    other_key, _ = sendgrid_keys()

    refused = [
        hooks.post("/hooks/email/sendgrid", content=body).status_code,
        hooks.post(
            "/hooks/email/sendgrid", content=body, headers=sendgrid_sign(other_key, body, now)
        ).status_code,
        hooks.post(
            "/hooks/email/sendgrid", content=body + b" ", headers=good
        ).status_code,  # the body changed after signing
        hooks.post(
            "/hooks/email/sendgrid",
            content=body,
            headers=sendgrid_sign(SENDGRID_KEY, body, str(int(time.time()) - 3_600)),
        ).status_code,  # an old, replayed request
    ]
    assert refused == [401, 403, 403, 403]
    assert _events(gcmc_db) == 0

    answer = hooks.post("/hooks/email/sendgrid", content=body, headers=good)
    assert answer.json() == {
        "received": 2,
        "recorded": 2,
        "duplicates": 0,
        "suppressed": {"gone@example.com": "hard_bounce"},
    }


# -- Mailgun ----------------------------------------------------------------------------------


def _mailgun_event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "gone@example.com",
        "timestamp": time.time(),
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
        "message": {"headers": {"message-id": "welcome-mg@gcmc.example"}},
    }


def test_a_mailgun_event_with_its_hmac_is_applied_once_and_a_bad_one_refused(
    hooks: TestClient, gcmc_db: Engine
) -> None:
    now = str(int(time.time()))
    good = mailgun_body(MAILGUN_KEY, _mailgun_event("mg-1"), now, "token-1")
    forged = mailgun_body("another-key", _mailgun_event("mg-2"), now, "token-2")
    unsigned = json.dumps({"event-data": _mailgun_event("mg-3")}).encode()
    headers = {"Content-Type": "application/json"}

    refused = [
        hooks.post("/hooks/email/mailgun", content=b, headers=headers).status_code
        for b in (forged, unsigned, b"not json")
    ]
    assert refused == [403, 401, 400]
    assert _events(gcmc_db) == 0

    first = hooks.post("/hooks/email/mailgun", content=good, headers=headers)
    again = hooks.post("/hooks/email/mailgun", content=good, headers=headers)
    assert first.json()["suppressed"] == {"gone@example.com": "hard_bounce"}
    assert again.json()["duplicates"] == 1
    assert _events(gcmc_db) == 1


def test_an_unconfigured_provider_is_503_and_an_unknown_one_404(
    gcmc_settings: Settings, gcmc_broker: dramatiq.Broker
) -> None:
    with TestClient(create_app(gcmc_settings)) as client:
        assert client.post("/hooks/email/mailgun", json={}).status_code == 503
        assert client.post("/hooks/email/postmark", json={}).status_code == 503
        assert client.post("/hooks/email/sendgrid", json=[]).status_code == 503
        assert client.post("/hooks/email/sparkpost", json={}).status_code == 404

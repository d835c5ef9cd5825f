"""Authenticating the email providers' event webhooks (issue 13, item 1).

=============  =============================================================================
provider       what proves the request comes from it
=============  =============================================================================
``ses``        the SNS message signature (``SignatureVersion`` 1: SHA1withRSA, 2:
               SHA256withRSA) over SNS's canonical string, checked with the certificate at
               ``SigningCertURL``, fetched over https from a host of
               ``GCMC_JOBS_EMAIL_HOOK_SES_CERT_HOSTS`` (``sns.*.amazonaws.com``) and cached
               per URL; optionally the topic (``GCMC_JOBS_EMAIL_HOOK_SES_TOPIC_ARNS``)
``postmark``   HTTP basic auth (``GCMC_JOBS_EMAIL_HOOK_POSTMARK_CREDENTIALS``) or an
               ``X-Webhook-Token`` header (``GCMC_JOBS_EMAIL_HOOK_POSTMARK_TOKEN``): Postmark
               signs nothing
``sendgrid``   ECDSA (P-256, SHA-256) over ``timestamp + body``:
               ``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``, checked with
               ``GCMC_JOBS_EMAIL_HOOK_SENDGRID_PUBLIC_KEY``
``mailgun``    HMAC-SHA256 of ``timestamp + token`` with
               ``GCMC_JOBS_EMAIL_HOOK_MAILGUN_SIGNING_KEY`` (the body's ``signature``)
=============  =============================================================================

A missing proof raises :class:`HookRefused` with status 401, a wrong one 403; a provider
whose secret is not set, 503. SendGrid and Mailgun timestamps older than
``GCMC_JOBS_EMAIL_HOOK_MAX_AGE_MS`` are refused as replays. Secrets are compared in constant
time and never logged. The signatures use the ``cryptography`` package (RSA and ECDSA).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from gcmc_jobs.settings import Settings

__all__ = [
    "HookRefused",
    "confirm_subscription",
    "decode_json",
    "https_get",
    "sns_string_to_sign",
    "verify_mailgun",
    "verify_postmark",
    "verify_sendgrid",
    "verify_sns",
]

#: Fetches an https URL's body (injectable: tests and a host may pass their own).
Fetch = Callable[[str, Settings], bytes]

_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_CERTS: dict[str, x509.Certificate] = {}
_CERTS_LOCK = threading.Lock()
_FETCH_TIMEOUT_S = 5.0


class HookRefused(Exception):
    """A webhook request that is not proven to come from its provider (``status`` 401 or
    403), or a provider that is not configured (503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _missing(what: str) -> HookRefused:
    return HookRefused(401, f"missing {what}")


def _wrong(what: str) -> HookRefused:
    return HookRefused(403, f"wrong {what}")


def _unconfigured(setting: str) -> HookRefused:
    return HookRefused(503, f"this webhook is disabled: set {setting} to enable it")


# -- Amazon SES through SNS -------------------------------------------------------------------


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """SNS's canonical string of ``message``: ``name\\nvalue\\n`` for each signed field
    present, in SNS's order (a notification's fields, or a subscription confirmation's)."""
    kind = message.get("Type")
    fields = _NOTIFICATION_FIELDS if kind == "Notification" else _CONFIRMATION_FIELDS
    parts = []
    for name in fields:
        value = message.get(name)
        if value is None:
            continue
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def _allowed_url(url: Any, settings: Settings, what: str) -> str:
    if not isinstance(url, str) or not url:
        raise _missing(what)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = any(fnmatch.fnmatchcase(host, p.lower()) for p in settings.email_hook_ses_cert_hosts)
    if parts.scheme != "https" or not allowed:
        raise _wrong(f"{what}: {parts.scheme}://{host} is not an allowed https host")
    return url


def https_get(url: str, settings: Settings) -> bytes:
    """GET ``url`` over https, verifying the server with the system's trust store or
    ``GCMC_JOBS_EMAIL_HOOK_SES_CA_FILE``; bounded by a 5 s timeout."""
    context = ssl.create_default_context(cafile=settings.email_hook_ses_ca_file)
    request = urllib.request.Request(url, headers={"User-Agent": "gcmc-jobs"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT_S, context=context) as r:  # noqa: S310
        body: bytes = r.read(1_000_000)
        return body


def _certificate(url: str, settings: Settings, fetch: Fetch) -> x509.Certificate:
    with _CERTS_LOCK:
        cached = _CERTS.get(url)
    if cached is not None:
        return cached
    try:
        certificate = x509.load_pem_x509_certificate(fetch(url, settings))
    except (OSError, ValueError) as exc:
        raise HookRefused(
            403, f"cannot use the signing certificate: {type(exc).__name__}"
        ) from None
    with _CERTS_LOCK:
        if len(_CERTS) > 64:
            _CERTS.clear()
        _CERTS[url] = certificate
    return certificate


def verify_sns(message: Mapping[str, Any], settings: Settings, fetch: Fetch = https_get) -> None:
    """Check an SNS message's signature (module docstring); raises :class:`HookRefused`."""
    if not isinstance(message.get("Signature"), str):
        raise _missing("SNS signature")
    version = message.get("SignatureVersion")
    if version not in ("1", "2"):
        raise _wrong(f"SNS SignatureVersion {version!r} (1 or 2)")
    url = _allowed_url(message.get("SigningCertURL"), settings, "SigningCertURL")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise _wrong("SNS signature (not base64)") from None
    key = _certificate(url, settings, fetch).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise _wrong("SNS signing certificate (not RSA)")
    algorithm: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise _wrong("SNS signature") from None
    topics = settings.email_hook_ses_topic_arns
    if topics and message.get("TopicArn") not in topics:
        raise _wrong("SNS topic (not in GCMC_JOBS_EMAIL_HOOK_SES_TOPIC_ARNS)")


def confirm_subscription(
    message: Mapping[str, Any], settings: Settings, fetch: Fetch = https_get
) -> None:
    """Confirm a verified ``SubscriptionConfirmation`` by visiting its ``SubscribeURL``
    (https, on an allowed host)."""
    fetch(_allowed_url(message.get("SubscribeURL"), settings, "SubscribeURL"), settings)


# -- Postmark ---------------------------------------------------------------------------------


def verify_postmark(headers: Mapping[str, str], settings: Settings) -> None:
    """Basic auth or the ``X-Webhook-Token`` header (module docstring)."""
    credentials = settings.email_hook_postmark_credentials
    token = settings.email_hook_postmark_token
    if credentials is None and token is None:
        raise _unconfigured("GCMC_JOBS_EMAIL_HOOK_POSTMARK_CREDENTIALS or _TOKEN")
    authorization = headers.get("authorization", "")
    given_token = headers.get("x-webhook-token")
    if credentials is not None and authorization.lower().startswith("basic "):
        try:
            given = base64.b64decode(authorization[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _wrong("basic auth") from None
        if hmac.compare_digest(given, credentials.get_secret_value().encode()):
            return
        raise _wrong("basic auth")
    if token is not None and given_token is not None:
        if hmac.compare_digest(given_token.encode(), token.get_secret_value().encode()):
            return
        raise _wrong("webhook token")
    raise _missing("credentials")


# -- SendGrid ---------------------------------------------------------------------------------


def _fresh(timestamp: str, settings: Settings, now: float) -> None:
    try:
        when = float(timestamp)
    except ValueError:
        raise _wrong("timestamp") from None
    if abs(now - when) * 1000 > settings.email_hook_max_age_ms:
        raise _wrong("timestamp (too old or in the future: a replay?)")


def _sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    data = text.strip()
    try:
        key = (
            serialization.load_pem_public_key(data.encode())
            if data.startswith("-----BEGIN")
            else serialization.load_der_public_key(base64.b64decode(data))
        )
    except (ValueError, binascii.Error):
        raise HookRefused(
            503, "GCMC_JOBS_EMAIL_HOOK_SENDGRID_PUBLIC_KEY is not a public key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise HookRefused(503, "GCMC_JOBS_EMAIL_HOOK_SENDGRID_PUBLIC_KEY is not an ECDSA key")
    return key


def verify_sendgrid(
    headers: Mapping[str, str], body: bytes, settings: Settings, now: float | None = None
) -> None:
    """ECDSA over ``timestamp + body`` (module docstring)."""
    configured = settings.email_hook_sendgrid_public_key
    if configured is None:
        raise _unconfigured("GCMC_JOBS_EMAIL_HOOK_SENDGRID_PUBLIC_KEY")
    signature = headers.get("x-twilio-email-event-webhook-signature")
    timestamp = headers.get("x-twilio-email-event-webhook-timestamp")
    if not signature or not timestamp:
        raise _missing("X-Twilio-Email-Event-Webhook-Signature / -Timestamp")
    key = _sendgrid_key(configured.get_secret_value())
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise _wrong("SendGrid signature") from None
    _fresh(timestamp, settings, time.time() if now is None else now)


# -- Mailgun ----------------------------------------------------------------------------------


def verify_mailgun(body: Any, settings: Settings, now: float | None = None) -> None:
    """HMAC-SHA256 of ``timestamp + token`` (module docstring)."""
    key = settings.email_hook_mailgun_signing_key
    if key is None:
        raise _unconfigured("GCMC_JOBS_EMAIL_HOOK_MAILGUN_SIGNING_KEY")
    signed = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(signed, dict) or not all(
        isinstance(signed.get(k), str | int) for k in ("timestamp", "token", "signature")
    ):
        raise _missing("Mailgun signature")
    timestamp, token = str(signed["timestamp"]), str(signed["token"])
    expected = hmac.new(
        key.get_secret_value().encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, str(signed["signature"])):
        raise _wrong("Mailgun signature")
    _fresh(timestamp, settings, time.time() if now is None else now)


def decode_json(body: bytes) -> Any:
    """The JSON of a webhook body; :class:`HookRefused` (400) when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        raise HookRefused(400, "the body is not JSON") from None

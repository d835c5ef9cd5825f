"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is ``whsec_`` followed by the base64 of the key bytes. Each request carries:

- ``webhook-id``: the event's id, the same on every retry and replay (receivers dedupe on it);
- ``webhook-timestamp``: integer seconds since the epoch, when this attempt was signed;
- ``webhook-signature``: ``v1,`` and the base64 of HMAC-SHA256(key, ``"{id}.{timestamp}.{body}"``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "secret_key", "sign", "signed_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret. ``ValueError`` when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of ``body``: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one request."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }

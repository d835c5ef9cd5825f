"""Signed unsubscribe tokens of campaign email, and the RFC 8058 one-click headers.

A token names a tenant, a campaign and an address, and carries an HMAC-SHA256 over exactly
those three with ``GCMC_JOBS_CAMPAIGN_SECRET``::

    base64url("<tenant>\\x1f<campaign>\\x1f<address>") "." base64url(hmac)

:func:`verify_token` recomputes the MAC and compares it in constant time
(:func:`hmac.compare_digest`): a token cannot be forged without the secret, and since the
address is inside what is signed, a token cannot be turned into one for another address (or
tenant, or campaign). The token is not secret from its own recipient (it holds their
address); it only proves that the package mailed that address for that tenant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from gcmc_jobs.errors import InvalidUnsubscribeToken

__all__ = ["UnsubscribeToken", "list_unsubscribe_headers", "make_token", "verify_token"]

_SEP = "\x1f"  # the ASCII unit separator: in no tenant id, campaign id or address
_MAX_TOKEN = 2_000


@dataclass(frozen=True)
class UnsubscribeToken:
    """What a verified token names (``tenant_id`` as text: the mapping's id type decides)."""

    tenant_id: str
    campaign_id: int
    address: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


def make_token(secret: str, *, tenant_id: int | str, campaign_id: int, address: str) -> str:
    """The token of ``address`` (as mailed: lowercased) in ``campaign_id`` of ``tenant_id``."""
    payload = _SEP.join((str(tenant_id), str(campaign_id), address)).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_token(secret: str, token: str) -> UnsubscribeToken:
    """What ``token`` names, if it was made with ``secret``; else
    :class:`~gcmc_jobs.errors.InvalidUnsubscribeToken` (never says which part was wrong)."""
    invalid = InvalidUnsubscribeToken("this unsubscribe link is not valid")
    if not 0 < len(token) <= _MAX_TOKEN or token.count(".") != 1:
        raise invalid
    encoded, _, signature = token.partition(".")
    try:
        payload = _unb64(encoded)
        mac = _unb64(signature)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise invalid
    try:
        tenant, campaign, address = payload.decode().split(_SEP)
        return UnsubscribeToken(tenant, int(campaign), address)
    except ValueError:  # signed by us, so never; kept as a refusal rather than a 500
        raise invalid from None


def list_unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """The ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers (RFC 2369, RFC 8058)
    for the one-click ``url`` (HTTPS, carrying the token) and an optional ``mailto``
    address whose subject carries the same URL's token."""
    targets = [f"<{url}>"]
    if mailto:
        token = url.rstrip("/").rpartition("/")[2]
        targets.append(f"<mailto:{mailto}?subject={quote('unsubscribe ' + token)}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

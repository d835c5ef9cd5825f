"""The text of an SMS: the alert bodies the daily jobs send, and the rules every body obeys.

An SMS alert is a short summary of the day's email digest, for the same recipient and the
same items (:class:`~gcmc_jobs.services.digests.Digest`), with a link to the portal: a text
message is no place for a list of a thousand documents. Bodies are kept near one or two
SMS segments (names shortened), and :func:`check_body` bounds every body at
:data:`MAX_BODY` characters (Twilio's limit) and refuses control characters but newlines.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from gcmc_jobs.errors import InvalidPayload

__all__ = ["ALERT_KINDS", "MAX_BODY", "alert_body", "check_body"]

#: The longest body accepted, in characters (Twilio's ``Body`` limit).
MAX_BODY = 1_600
#: The kinds of SMS alert (the digest kinds they summarise).
ALERT_KINDS = ("document_expiry_warning", "filing_reminder")
_NAME = 40


def check_body(body: object) -> str:
    """``body`` if it is a text of 1 to :data:`MAX_BODY` characters without control
    characters (newlines and tabs allowed), else :class:`~gcmc_jobs.errors.InvalidPayload`."""
    if not isinstance(body, str) or not body.strip():
        raise InvalidPayload("body: an SMS needs a non-empty text")
    if len(body) > MAX_BODY:
        raise InvalidPayload(f"body: {len(body)} characters; an SMS takes at most {MAX_BODY}")
    for char in body:
        if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise InvalidPayload(f"body: control character U+{ord(char):04X} is not allowed")
    return body


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _NAME else text[: _NAME - 1] + "…"


def _days(n: int, *, future: str, today: str) -> str:
    if n == 0:
        return today
    unit = "day" if abs(n) == 1 else "days"
    return future.format(n=abs(n), unit=unit) if n > 0 else f"{abs(n)} {unit} overdue"


def alert_body(
    kind: str,
    *,
    tenant_name: str,
    items: Sequence[dict[str, Any]],
    portal_url: str,
    risk_changes: int = 0,
) -> str:
    """The SMS summarising a digest of ``kind`` (:data:`ALERT_KINDS`) of ``items`` (the
    digest's rows: ``days_left``, and ``title``/``client_name`` or
    ``filing_type``/``client_name``), ``items`` sorted soonest first. ``risk_changes``: how
    many of the recipient's clients changed risk level today (``document_expiry_warning``
    only), counted in the text; ``items`` may then be empty."""
    portal_url = portal_url.rstrip("/")
    tenant = _short(tenant_name)
    if kind == "document_expiry_warning":
        noun = "client" if risk_changes == 1 else "clients"
        changed = f"{risk_changes} {noun} changed risk level today. " if risk_changes else ""
        if not items:
            return f"{tenant}: {changed}{portal_url}/clients"
        count, first = len(items), items[0]
        noun = "document expires" if count == 1 else "documents expire"
        when = _days(int(first["days_left"]), future="in {n} {unit}", today="today")
        return (
            f"{tenant}: {count} {noun} soon. Next: {_short(first['title'])} "
            f"({_short(first['client_name'])}) {when}. {changed}{portal_url}/documents"
        )
    if kind == "filing_reminder":
        count, first = len(items), items[0]
        overdue = sum(1 for item in items if int(item["days_left"]) < 0)
        noun = "filing needs" if count == 1 else "filings need"
        late = f", {overdue} overdue" if overdue else ""
        when = _days(int(first["days_left"]), future="due in {n} {unit}", today="due today")
        return (
            f"{tenant}: {count} {noun} attention{late}. Next: {_short(first['filing_type'])} "
            f"({_short(first['client_name'])}) {when}. {portal_url}/filings"
        )
    raise InvalidPayload(f"unknown SMS alert kind {kind!r}; known: {', '.join(ALERT_KINDS)}")

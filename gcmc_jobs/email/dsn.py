"""RFC 3464 delivery status notifications: parsed into delivery events, from ``.eml`` files,
an mbox or a Maildir (``gcmc-jobs bounces ingest PATH``).

A DSN is a ``multipart/report; report-type=delivery-status`` message whose
``message/delivery-status`` part holds one block per recipient (``Final-Recipient``,
``Action``, ``Status``, ``Diagnostic-Code``), usually followed by the original message or its
headers, where :func:`parse_dsn` finds the email's ``X-GCMC-Dedup-Key`` and ``Message-ID``.

``Action: failed`` is a bounce: hard when the status means the mailbox does not exist
(:func:`gcmc_jobs.email.bounce_codes.mailbox_does_not_exist`), soft otherwise; ``delayed`` is
deferred; ``delivered`` and ``relayed`` are delivered. The event id is the DSN's own
``Message-ID`` (or a hash of its bytes) plus the recipient, so reading the same mailbox twice
records nothing twice. A message that is not a DSN is skipped and counted.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from gcmc_jobs.db.enums import EmailEventKind
from gcmc_jobs.email.bounce_codes import enhanced_status, mailbox_does_not_exist
from gcmc_jobs.services.bounces import DeliveryEvent

__all__ = ["SOURCE", "DsnMessage", "parse_dsn", "read_messages"]

#: The source of events read from DSNs.
SOURCE = "dsn"

_ACTIONS = {
    "failed": EmailEventKind.BOUNCED,
    "delayed": EmailEventKind.DEFERRED,
    "delivered": EmailEventKind.DELIVERED,
    "relayed": EmailEventKind.DELIVERED,
    "expanded": EmailEventKind.DELIVERED,
}


@dataclass(frozen=True)
class DsnMessage:
    """One message read from a path: where it came from, and its raw bytes."""

    origin: str
    raw: bytes


def read_messages(path: Path) -> Iterator[DsnMessage]:
    """Every message under ``path``: a Maildir (a directory with ``cur``/``new``), a
    directory of ``.eml`` files, one ``.eml`` file, or an mbox file (any other file)."""
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                with box.get_file(key) as handle:
                    yield DsnMessage(f"{path}:{key}", handle.read())
            return
        for file in sorted(path.glob("*.eml")):
            yield DsnMessage(str(file), file.read_bytes())
        return
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".eml":
        yield DsnMessage(str(path), path.read_bytes())
        return
    mbox = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(mbox.keys()):
            yield DsnMessage(f"{path}#{index + 1}", mbox.get_bytes(key))
    finally:
        mbox.close()


def parse_dsn(raw: bytes) -> list[DeliveryEvent] | None:
    """The delivery events of one DSN, or None when ``raw`` is not a DSN."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    status_part: Message | None = None
    original: Message | None = None
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status" and status_part is None:
            status_part = part
        elif content_type in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _original_headers(part)
    if status_part is None:
        return None
    payload = status_part.get_payload()
    blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
    if not blocks:
        return None
    per_message, recipients = blocks[0], blocks[1:]
    dsn_id = (message.get("Message-ID") or "").strip() or hashlib.sha256(raw).hexdigest()
    occurred = _date(per_message.get("Arrival-Date") or message.get("Date"))
    dedup_key = _header(original, "X-GCMC-Dedup-Key")
    message_id = _header(original, "Message-ID")
    events = []
    for block in recipients:
        address = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        kind = _ACTIONS.get((block.get("Action") or "").strip().lower())
        if address is None or kind is None:
            continue
        status = (block.get("Status") or "").strip()
        diagnostic = " ".join((block.get("Diagnostic-Code") or "").split())
        detail = "; ".join(x for x in (status, diagnostic) if x) or None
        permanent = None
        if kind is EmailEventKind.BOUNCED:
            code = enhanced_status(status) or enhanced_status(diagnostic) or ""
            smtp_code = _smtp_code(diagnostic)
            permanent = mailbox_does_not_exist(smtp_code, code or diagnostic)
        events.append(
            DeliveryEvent(
                source=SOURCE,
                event_id=f"{dsn_id}:{address}",
                address=address,
                kind=kind,
                occurred_at=_date(block.get("Last-Attempt-Date")) or occurred or _now(),
                permanent=permanent,
                detail=detail,
                dedup_key=dedup_key,
                message_id=message_id,
            )
        )
    return events


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822: the parsed original
        return payload[0] if payload and isinstance(payload[0], Message) else None
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return None
    return email.message_from_bytes(text, policy=email.policy.compat32)


def _header(message: Message | None, name: str) -> str | None:
    if message is None:
        return None
    value = message.get(name)
    return " ".join(str(value).split()) if value else None


def _address(field: str | None) -> str | None:
    if not field:
        return None
    _, _, address = field.partition(";")
    address = (address or field).strip().strip("<>").strip()
    return address.lower() if "@" in address else None


def _smtp_code(diagnostic: str) -> int | None:
    _, _, rest = diagnostic.partition(";")
    head = rest.strip()[:3]
    return int(head) if head.isdigit() else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)

"""Building the MIME message of a rendered email: multipart/alternative, text then HTML,
inside a multipart/mixed with the attachments when there are any."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr

from gcmc_jobs.email.addresses import envelope_address
from gcmc_jobs.email.rendering import RenderedEmail

__all__ = ["Attachment", "build_mime", "envelope", "message_id_for", "needs_utf8", "to_bytes"]

_SMTPUTF8 = SMTP.clone(utf8=True)


@dataclass(frozen=True)
class Attachment:
    """A file attached to an email: its name (as the recipient sees it), MIME type
    (``application/pdf``) and bytes."""

    filename: str
    content_type: str
    content: bytes

    def __repr__(self) -> str:  # the bytes are not worth printing
        return f"Attachment({self.filename!r}, {self.content_type!r}, {len(self.content)} bytes)"


def build_mime(
    rendered: RenderedEmail,
    *,
    to: str,
    sender: str,
    dedup_key: str | None = None,
    now: datetime | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A ``multipart/alternative`` message (plain text first, HTML preferred) with a fresh
    ``Message-ID`` on the sender's domain (derived from ``dedup_key`` when given: see
    :func:`message_id_for`).

    Header values are set through :mod:`email`'s header registry, which refuses CR/LF: a
    second guard behind the payload validation. ``X-GCMC-Kind`` names the kind and
    ``X-GCMC-Dedup-Key`` the logical email, for support and bounce processing.

    With ``attachments`` the message becomes ``multipart/mixed``: the alternative parts
    first, then each file base64-encoded with ``Content-Disposition: attachment``.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "gcmc-jobs.invalid"
    message = EmailMessage()
    message["From"] = sender
    wire = envelope_address(to)
    # An ASCII local part travels in ASCII everywhere (its domain in IDNA form); a non-ASCII
    # one stays UTF-8, which only an SMTPUTF8 server takes (see needs_smtputf8 and to_bytes).
    message["To"] = Address(addr_spec=wire) if wire.isascii() else wire
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id_for(dedup_key, domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-GCMC-Kind"] = rendered.kind
    if dedup_key:
        message["X-GCMC-Dedup-Key"] = dedup_key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """``(MAIL FROM, [RCPT TO, ...])`` of ``message``: its ``From`` and ``To`` addresses, each
    domain in IDNA form (:func:`~gcmc_jobs.email.addresses.envelope_address`)."""
    sender = envelope_address(parseaddr(str(message["From"]))[1])
    recipients = [envelope_address(address) for _, address in getaddresses([str(message["To"])])]
    return sender, recipients


def needs_utf8(message: EmailMessage) -> bool:
    """True when an address of ``message`` has a non-ASCII local part: the message can only
    travel as UTF-8 (SMTPUTF8, RFC 6531/6532)."""
    sender, recipients = envelope(message)
    return not all(address.isascii() for address in (sender, *recipients))


def to_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as SMTP wants it: CRLF line endings, lines folded (``email.policy.SMTP``).

    ``smtplib.SMTP.sendmail`` sends bytes as they are, so the policy must do this. With
    ``utf8`` (an SMTPUTF8 transaction, or an ``.eml`` file) headers stay UTF-8 (RFC 6532)
    instead of being encoded, which is the only form a non-ASCII address can take.
    """
    return message.as_bytes(policy=_SMTPUTF8 if utf8 else SMTP)


def message_id_for(dedup_key: str | None, *, domain: str) -> str:
    """The ``Message-ID`` of a logical email: the same for every copy of one dedup key.

    A copy can only be sent twice when a worker dies after the server accepted it and
    before ``email_log`` recorded it (SMTP's own ambiguity, RFC 1047); giving both copies
    the same ``Message-ID`` lets receiving systems and mail clients recognise the second
    as a duplicate. Without a key, a fresh one (:func:`email.utils.make_msgid`).
    """
    if not dedup_key:
        return make_msgid(domain=domain)
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
    return f"<{digest}.gcmc@{domain}>"

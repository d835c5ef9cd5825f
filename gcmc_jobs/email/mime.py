"""Building the MIME message of a rendered email: multipart/alternative, text then HTML."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

from gcmc_jobs.email.rendering import RenderedEmail

__all__ = ["build_mime", "to_bytes"]


def build_mime(
    rendered: RenderedEmail,
    *,
    to: str,
    sender: str,
    dedup_key: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """A ``multipart/alternative`` message (plain text first, HTML preferred) with a fresh
    ``Message-ID`` on the sender's domain.

    Header values are set through :mod:`email`'s header registry, which refuses CR/LF: a
    second guard behind the payload validation. ``X-GCMC-Kind`` names the kind and
    ``X-GCMC-Dedup-Key`` the logical email, for support and bounce processing.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "gcmc-jobs.invalid"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(addr_spec=to)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-GCMC-Kind"] = rendered.kind
    if dedup_key:
        message["X-GCMC-Dedup-Key"] = dedup_key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def to_bytes(message: EmailMessage) -> bytes:
    """The message as SMTP wants it: CRLF line endings, lines folded (``email.policy.SMTP``).

    ``smtplib.SMTP.sendmail`` sends bytes as they are, so the policy must do this.
    """
    return message.as_bytes(policy=SMTP)

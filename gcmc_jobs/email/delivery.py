"""Delivering one logical email, exactly once per dedup key: the domain side of the actor.

:func:`deliver` knows nothing of Dramatiq: render, record ``queued``, claim the send (see
:mod:`gcmc_jobs.services.email_log`), skip suppressed addresses, build the MIME message, hand
it to the transport, record the outcome — all in one transaction from the claim on, so a
second worker (or a redelivered message) never mails a key that was sent. A recipient the
server refuses because its mailbox does not exist (:class:`~gcmc_jobs.errors.MailboxNotFound`)
is suppressed in that same transaction (a hard bounce from source ``smtp``,
:func:`gcmc_jobs.services.bounces.record_events`).

The one window left: the server accepted the mail and the process died before the
``sent`` row committed (milliseconds). Then the key is mailed again on redelivery: the
guarantee is *never twice once recorded*, at-least-once before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from gcmc_jobs.db.enums import EmailEventKind
from gcmc_jobs.email.kinds import EmailPayload
from gcmc_jobs.email.mime import Attachment, build_mime
from gcmc_jobs.email.registry import get_kind
from gcmc_jobs.email.rendering import render
from gcmc_jobs.email.transports.base import Transport
from gcmc_jobs.errors import (
    MailboxNotFound,
    PermanentDeliveryError,
    PermanentError,
    TransientError,
)
from gcmc_jobs.services import email_log, webhook_events
from gcmc_jobs.services.bounces import DeliveryEvent, record_events
from gcmc_jobs.services.delivery_log import Outcome

__all__ = ["Delivery", "Outcome", "deliver"]


@dataclass(frozen=True)
class Delivery:
    """The result of :func:`deliver`."""

    outcome: Outcome
    dedup_key: str
    subject: str
    provider_message_id: str | None = None


def deliver(
    engine: Engine,
    transport: Transport,
    *,
    kind: str,
    to: str,
    payload: EmailPayload,
    dedup_key: str,
    sender: str,
    tenant_id: int | str | None = None,
    templates_dir: str | None = None,
    final_attempt: bool = True,
    attachments: Sequence[Attachment] = (),
) -> Delivery:
    """Send ``payload`` as ``kind`` to ``to`` unless ``dedup_key`` was already sent.

    Raises :class:`~gcmc_jobs.errors.TransientDeliveryError` (the row stays ``queued`` with
    the error, unless ``final_attempt``: then ``failed``) or a permanent error (the row is
    ``failed``). A suppressed address is not an error: the row becomes ``suppressed``.
    """
    entry = get_kind(kind)
    try:
        rendered = render(kind, payload, templates_dir=templates_dir)
    except PermanentError as exc:
        with engine.begin() as connection:  # the record says why nothing was sent
            email_log.ensure_queued(
                connection,
                dedup_key=dedup_key,
                to_address=to,
                kind=kind,
                subject=f"({kind})",
                tenant_id=tenant_id,
            )
            email_log.mark_failed(connection, dedup_key, f"{type(exc).__name__}: {exc}")
        raise
    # Built before the transaction: the row lock is held for the send alone.
    message = build_mime(
        rendered, to=to, sender=sender, dedup_key=dedup_key, attachments=attachments
    )
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            # Insert-if-absent and claim in one transaction: a concurrent insert of the same
            # key waits for this one to commit, then finds the row taken.
            email_log.ensure_queued(
                connection,
                dedup_key=dedup_key,
                to_address=to,
                kind=kind,
                subject=rendered.subject,
                tenant_id=tenant_id,
            )
            if not email_log.claim(connection, dedup_key):
                transaction.rollback()
                return Delivery(Outcome.ALREADY_DONE, dedup_key, rendered.subject)
            reason = email_log.suppression_reason(connection, to, security=entry.critical)
            if reason is not None:
                email_log.mark_suppressed(connection, dedup_key, reason.value)
                transaction.commit()
                return Delivery(Outcome.SUPPRESSED, dedup_key, rendered.subject)
            try:
                provider_id = transport.send(message)
            except (PermanentError, PermanentDeliveryError) as exc:
                email_log.mark_failed(connection, dedup_key, f"{type(exc).__name__}: {exc}")
                if isinstance(exc, MailboxNotFound):
                    _suppress_unknown_mailbox(connection, exc, dedup_key)
                if isinstance(exc, PermanentDeliveryError) and tenant_id is not None:
                    # The server refused the recipient for good: tell the tenant's webhooks,
                    # in the transaction that records the failure.
                    webhook_events.emit_email_bounced(
                        connection,
                        tenant_id=tenant_id,
                        address=to,
                        email_dedup_key=dedup_key,
                        kind=kind,
                        reason="rejected",
                        error=str(exc),
                    )
                transaction.commit()
                raise
            except TransientError as exc:
                error = f"{type(exc).__name__}: {exc}"
                email_log.note_error(connection, dedup_key, error, final_attempt=final_attempt)
                transaction.commit()
                raise
            email_log.mark_sent(connection, dedup_key, provider_id)
            transaction.commit()
            return Delivery(Outcome.SENT, dedup_key, rendered.subject, provider_id)
        finally:
            if transaction.is_active:
                transaction.rollback()


def _suppress_unknown_mailbox(connection: Connection, exc: MailboxNotFound, dedup_key: str) -> None:
    """The server said at RCPT that the mailbox does not exist: record the hard bounce
    (source ``smtp``), which suppresses the address, in the transaction that marks the row
    failed."""
    record_events(
        connection,
        [
            DeliveryEvent(
                source="smtp",
                event_id=f"{dedup_key}:{exc.address.lower()}",
                address=exc.address,
                kind=EmailEventKind.BOUNCED,
                occurred_at=datetime.now(UTC),
                permanent=True,
                detail=str(exc),
                dedup_key=dedup_key,
            )
        ],
    )

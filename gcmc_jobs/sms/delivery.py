"""Delivering one logical SMS, once per dedup key: the domain side of ``send_sms``.

:func:`deliver_sms` knows nothing of Dramatiq. It records the ``sms_log`` row ``queued``,
claims the send (:mod:`gcmc_jobs.services.sms_log`), and then, in that one transaction:

1. a number on ``sms_suppressions`` is not texted: the row becomes ``suppressed``, an
   outcome, not an error;
2. the number is checked (:func:`~gcmc_jobs.sms.numbers.normalize_phone`): one that is not
   valid E.164 fails that SMS alone, for good (``failed`` with the reason,
   :class:`~gcmc_jobs.errors.InvalidPhoneNumber`, dead-lettered), before any request;
3. the transport sends it: ``sent`` with the provider's id; a refusal for good is ``failed``
   (and, when the provider blames the number, the number is suppressed in the same
   transaction: a STOP reply, an invalid or unreachable number); a transient error keeps the
   row ``queued`` for the next attempt (``failed`` on the last).

As with email, the one window left is a crash between the provider's answer and the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from gcmc_jobs.db.enums import SmsSuppressionReason
from gcmc_jobs.db.tables import Id
from gcmc_jobs.errors import (
    InvalidPhoneNumber,
    PermanentError,
    SmsRejected,
    TransientError,
)
from gcmc_jobs.services import sms_log
from gcmc_jobs.services.delivery_log import Outcome
from gcmc_jobs.sms.numbers import normalize_phone
from gcmc_jobs.sms.transports.base import SmsMessage, SmsTransport

__all__ = ["SmsDelivery", "SmsOutcome", "deliver_sms"]


#: What :func:`deliver_sms` did: sent, already done or suppressed, as for an email
#: (:class:`gcmc_jobs.services.delivery_log.Outcome`, one enum for both channels).
SmsOutcome = Outcome


@dataclass(frozen=True)
class SmsDelivery:
    """The result of :func:`deliver_sms`."""

    outcome: SmsOutcome
    dedup_key: str
    provider_message_id: str | None = None


def deliver_sms(
    engine: Engine,
    transport: SmsTransport,
    *,
    kind: str,
    to: str,
    body: str,
    dedup_key: str,
    tenant_id: Id | None = None,
    final_attempt: bool = True,
) -> SmsDelivery:
    """Text ``body`` to ``to`` unless ``dedup_key`` was already sent (module docstring).

    Raises :class:`~gcmc_jobs.errors.InvalidPhoneNumber` or
    :class:`~gcmc_jobs.errors.SmsRejected` (permanent: the row is ``failed``), or
    :class:`~gcmc_jobs.errors.TransientDeliveryError` (the row stays ``queued`` with the
    error, unless ``final_attempt``: then ``failed``).
    """
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            sms_log.ensure_queued(
                connection,
                dedup_key=dedup_key,
                to_phone=to,
                kind=kind,
                body=body,
                tenant_id=tenant_id,
            )
            if not sms_log.claim(connection, dedup_key):
                transaction.rollback()
                return SmsDelivery(SmsOutcome.ALREADY_DONE, dedup_key)
            try:
                number = normalize_phone(to, field="to")
            except InvalidPhoneNumber as exc:
                sms_log.mark_failed(connection, dedup_key, f"InvalidPhoneNumber: {exc}")
                transaction.commit()
                raise
            reason = sms_log.suppression_reason(connection, number)
            if reason is not None:
                sms_log.mark_suppressed(connection, dedup_key, reason.value)
                transaction.commit()
                return SmsDelivery(SmsOutcome.SUPPRESSED, dedup_key)
            message = SmsMessage(to=number, body=body, kind=kind, dedup_key=dedup_key)
            try:
                provider_id = transport.send(message)
            except SmsRejected as exc:
                sms_log.mark_failed(connection, dedup_key, f"SmsRejected: {exc}")
                if exc.suppress is not None:
                    sms_log.suppress(
                        connection, number, SmsSuppressionReason(exc.suppress), str(exc)
                    )
                transaction.commit()
                raise
            except PermanentError as exc:
                sms_log.mark_failed(connection, dedup_key, f"{type(exc).__name__}: {exc}")
                transaction.commit()
                raise
            except TransientError as exc:
                error = f"{type(exc).__name__}: {exc}"
                sms_log.note_error(connection, dedup_key, error, final_attempt=final_attempt)
                transaction.commit()
                raise
            sms_log.mark_sent(connection, dedup_key, provider_id)
            transaction.commit()
            return SmsDelivery(SmsOutcome.SENT, dedup_key, provider_id)
        finally:
            if transaction.is_active:
                transaction.rollback()

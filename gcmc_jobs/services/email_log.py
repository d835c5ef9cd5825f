"""The email delivery record (``email_log``) and the suppression list, as plain SQL functions.

One row per logical email, keyed by its dedup key, with the states and the claim of
:mod:`gcmc_jobs.services.delivery_log`::

    queued ──claim──▶ (send) ──▶ sent        provider_message_id, sent_at
       ▲                 │
       └── transient ◀───┤                   error kept, attempts counted, still queued
                         └──▶ failed          a 5xx, or retries exhausted (error kept)
    queued ──▶ suppressed                     the address is on email_suppressions

**Claiming a send.** :func:`claim` is a conditional ``UPDATE … SET attempts = attempts + 1
WHERE dedup_key = :k AND status IN ('queued', 'failed')``, run in the transaction that stays
open while the mail is handed to the server and that records the outcome: a second worker
processing the same key waits on that row, then finds it ``sent`` and does not mail (see
:mod:`gcmc_jobs.services.delivery_log`).

Every function takes a SQLAlchemy ``Connection`` and issues a constant number of statements,
on the connection's mapped tables (:func:`~gcmc_jobs.db.tables.tables_of`): ``email_log`` and
``email_suppressions`` are the package's own; the tenant check reads the platform's
``tenants`` wherever the mapping puts it, with the mapping's id type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from gcmc_jobs.db.enums import EmailStatus, SuppressionReason
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.services.delivery_log import DeliveryLog

__all__ = [
    "SECURITY_IGNORED_REASONS",
    "LogEntry",
    "claim",
    "ensure_queued",
    "get",
    "mark_failed",
    "mark_sent",
    "mark_suppressed",
    "note_error",
    "note_transient_error",
    "suppression_reason",
]

#: Suppression reasons security mail (password resets) ignores (DOMAIN.md): a complaint
#: must not lock a user out of their account; a hard bounce or a manual block still applies.
SECURITY_IGNORED_REASONS = frozenset({SuppressionReason.COMPLAINT})

_LOG = DeliveryLog(
    "email_log",
    EmailStatus,
    noun="email",
    recipient="address",
    provider_id=lambda provider_id: provider_id[:998],
)


@dataclass(frozen=True)
class LogEntry:
    """One ``email_log`` row, as plain values."""

    dedup_key: str
    tenant_id: Id | None
    to_address: str
    kind: str
    subject: str
    status: EmailStatus
    provider_message_id: str | None
    error: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None


def ensure_queued(
    connection: Connection,
    *,
    dedup_key: str,
    to_address: str,
    kind: str,
    subject: str,
    tenant_id: Id | None = None,
) -> None:
    """Insert the row as ``queued`` unless one with this key exists (then change nothing).

    Raises :class:`~gcmc_jobs.errors.UnknownTenant` (permanent: dead-lettered at once, never
    retried) when ``tenant_id`` names no tenant (checked in the same transaction:
    :meth:`~gcmc_jobs.services.delivery_log.DeliveryLog.ensure_queued`).
    """
    _LOG.ensure_queued(
        connection,
        dedup_key=dedup_key,
        kind=kind,
        tenant_id=tenant_id,
        to_address=to_address,
        subject=subject[:998],
    )


#: Count an attempt and take the right to send; False when already sent or suppressed. Call
#: inside the transaction that sends and records the outcome (see the module docstring).
claim = _LOG.claim
#: Record that the server accepted the email.
mark_sent = _LOG.mark_sent
#: Record that the email failed for good (a 5xx, or retries exhausted).
mark_failed = _LOG.mark_failed
#: Keep the last transient error; the row stays ``queued`` for the next attempt.
note_transient_error = _LOG.note_transient_error
#: A transient error: :func:`mark_failed` on the last attempt, else :func:`note_transient_error`.
note_error = _LOG.note_error
#: Record that the address is suppressed: not mailed, not an error to retry.
mark_suppressed = _LOG.mark_suppressed


def suppression_reason(
    connection: Connection, address: str, *, security: bool = False
) -> SuppressionReason | None:
    """Why ``address`` must not be mailed, or None. ``security=True`` (password resets)
    ignores :data:`SECURITY_IGNORED_REASONS`.

    Addresses are compared case-insensitively (``lower()`` on both sides), as the digest
    jobs compare them: a suppression stored as ``Mixed.Case@Example.com`` applies to
    ``mixed.case@example.com``.
    """
    suppressions = tables_of(connection).email_suppressions
    reasons = connection.scalars(
        select(suppressions.c.reason).where(func.lower(suppressions.c.address) == address.lower())
    ).all()
    for reason in map(SuppressionReason, reasons):
        if not (security and reason in SECURITY_IGNORED_REASONS):
            return reason
    return None


def get(connection: Connection, dedup_key: str) -> LogEntry | None:
    """The row of ``dedup_key``, or None."""
    values = _LOG.get(connection, dedup_key)
    return None if values is None else LogEntry(**values)

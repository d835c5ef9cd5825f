"""The SMS delivery record (``sms_log``) and the numbers never to text (``sms_suppressions``).

One row per logical SMS, keyed by its dedup key, with the states and the claim that
:mod:`gcmc_jobs.services.delivery_log` gives both channels::

    queued ──claim──▶ (send) ──▶ sent        provider_message_id (Twilio's SM…), sent_at
       ▲                 │
       └── transient ◀───┤                   error kept, attempts counted, still queued
                         └──▶ failed          an invalid number, a refusal, retries exhausted
    queued ──▶ suppressed                     the number is on sms_suppressions

:func:`claim` is the conditional ``UPDATE … WHERE status IN ('queued', 'failed')`` run in
the transaction that stays open while the provider is called and that records the outcome:
a second worker with the same key waits on the row, then finds it ``sent`` and texts
nothing. Every function issues a constant number of statements on the connection's mapped
tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from gcmc_jobs.db.enums import SmsStatus, SmsSuppressionReason
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.services.delivery_log import ERROR_MAX, DeliveryLog

__all__ = [
    "SmsLogEntry",
    "Suppression",
    "claim",
    "ensure_queued",
    "get",
    "mark_failed",
    "mark_sent",
    "mark_suppressed",
    "note_error",
    "note_transient_error",
    "suppress",
    "suppression_reason",
    "suppressions",
    "unsuppress",
]

_LOG = DeliveryLog(
    "sms_log",
    SmsStatus,
    noun="SMS",
    recipient="number",
    provider_id=lambda provider_id: provider_id[-64:],
)


@dataclass(frozen=True)
class SmsLogEntry:
    """One ``sms_log`` row, as plain values."""

    dedup_key: str
    tenant_id: Id | None
    to_phone: str
    kind: str
    body: str
    status: SmsStatus
    provider_message_id: str | None
    error: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Suppression:
    """One ``sms_suppressions`` row."""

    phone: str
    reason: SmsSuppressionReason
    detail: str | None
    created_at: datetime


def _insert(connection: Connection, table: object) -> postgresql.Insert | sqlite.Insert:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)  # type: ignore[arg-type]
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)  # type: ignore[arg-type]
    raise NotImplementedError(connection.dialect.name)  # pragma: no cover


def ensure_queued(
    connection: Connection,
    *,
    dedup_key: str,
    to_phone: str,
    kind: str,
    body: str,
    tenant_id: Id | None = None,
) -> None:
    """Insert the row as ``queued`` unless one with this key exists (then change nothing).

    Raises :class:`~gcmc_jobs.errors.UnknownTenant` when ``tenant_id`` names no tenant (the
    caller's transaction rolls the new row back).
    """
    _LOG.ensure_queued(
        connection,
        dedup_key=dedup_key,
        kind=kind,
        tenant_id=tenant_id,
        to_phone=to_phone[:64],
        body=body,
    )


#: Count an attempt and take the right to send; False when already sent or suppressed.
claim = _LOG.claim
#: Record that the provider accepted the SMS.
mark_sent = _LOG.mark_sent
#: Record that the SMS failed for good.
mark_failed = _LOG.mark_failed
#: Keep the last transient error; the row stays ``queued`` for the next attempt.
note_transient_error = _LOG.note_transient_error
#: A transient error: :func:`mark_failed` on the last attempt, else :func:`note_transient_error`.
note_error = _LOG.note_error
#: Record that the number is suppressed: not texted, not an error to retry.
mark_suppressed = _LOG.mark_suppressed


def get(connection: Connection, dedup_key: str) -> SmsLogEntry | None:
    """The row of ``dedup_key``, or None."""
    values = _LOG.get(connection, dedup_key)
    return None if values is None else SmsLogEntry(**values)


# -- suppressions -------------------------------------------------------------------------


def suppression_reason(connection: Connection, phone: str) -> SmsSuppressionReason | None:
    """Why ``phone`` (E.164) must not be texted, or None."""
    table = tables_of(connection).sms_suppressions
    reason = connection.scalar(select(table.c.reason).where(table.c.phone == phone))
    return None if reason is None else SmsSuppressionReason(reason)


def suppress(
    connection: Connection,
    phone: str,
    reason: SmsSuppressionReason,
    detail: str | None = None,
) -> bool:
    """Put ``phone`` (E.164) on the suppression list; False when it already was (its first
    reason is kept)."""
    table = tables_of(connection).sms_suppressions
    statement = (
        _insert(connection, table)
        .values(phone=phone, reason=reason, detail=(detail or None) and detail[:ERROR_MAX])
        .on_conflict_do_nothing(index_elements=["phone"])
    )
    result = connection.execute(statement, execution_options={"preserve_rowcount": True})
    return result.rowcount == 1


def unsuppress(connection: Connection, phone: str) -> bool:
    """Take ``phone`` off the suppression list; False when it was not on it."""
    table = tables_of(connection).sms_suppressions
    result = connection.execute(delete(table).where(table.c.phone == phone))
    return result.rowcount == 1


def suppressions(connection: Connection, *, limit: int = 1_000) -> list[Suppression]:
    """The suppressed numbers, newest first."""
    table = tables_of(connection).sms_suppressions
    rows = connection.execute(
        select(table).order_by(table.c.created_at.desc(), table.c.phone).limit(limit)
    ).all()
    return [
        Suppression(r.phone, SmsSuppressionReason(r.reason), r.detail, r.created_at) for r in rows
    ]

"""The email delivery record (``email_log``) and the suppression list, as plain SQL functions.

One row per logical email, keyed by its dedup key::

    queued ──claim──▶ (send) ──▶ sent        provider_message_id, sent_at
       ▲                 │
       └── transient ◀───┤                   error kept, attempts counted, still queued
                         └──▶ failed          a 5xx, or retries exhausted (error kept)
    queued ──▶ suppressed                     the address is on email_suppressions

**Claiming a send.** :func:`claim` is a conditional ``UPDATE … SET attempts = attempts + 1
WHERE dedup_key = :k AND status IN ('queued', 'failed')``, run in the transaction that stays
open while the mail is handed to the server and that records the outcome. A second worker
processing the same key blocks on that row (PostgreSQL row lock; SQLite's write lock), then
re-evaluates the condition against the committed row: ``sent`` → zero rows → it does not
mail. The same statement works on both databases; no ``SELECT … FOR UPDATE`` is needed.

Every function takes a SQLAlchemy ``Connection`` and issues a constant number of statements,
on the connection's mapped tables (:func:`~gcmc_jobs.db.tables.tables_of`): ``email_log`` and
``email_suppressions`` are the package's own; the tenant check reads the platform's
``tenants`` wherever the mapping puts it, with the mapping's id type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gcmc_jobs.db.enums import EmailStatus, SuppressionReason
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import UnknownTenant

__all__ = [
    "SECURITY_IGNORED_REASONS",
    "LogEntry",
    "claim",
    "ensure_queued",
    "get",
    "mark_failed",
    "mark_sent",
    "mark_suppressed",
    "note_transient_error",
    "suppression_reason",
]

#: Suppression reasons security mail (password resets) ignores (DOMAIN.md): a complaint
#: must not lock a user out of their account; a hard bounce or a manual block still applies.
SECURITY_IGNORED_REASONS = frozenset({SuppressionReason.COMPLAINT})

_CLAIMABLE = (EmailStatus.QUEUED, EmailStatus.FAILED)
_ERROR_MAX = 2_000


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
    retried) when ``tenant_id`` names no tenant. The foreign key would say so on our own
    schema, but a host's tenants table may carry none, so when the row is new the tenant's
    existence is checked in the same transaction (one indexed lookup, once per email).
    """
    values = {
        "dedup_key": dedup_key,
        "tenant_id": tenant_id,
        "to_address": to_address,
        "kind": kind,
        "subject": subject[:998],
        "status": EmailStatus.QUEUED,
        "attempts": 0,
    }
    t = tables_of(connection)
    statement: postgresql.Insert | sqlite.Insert
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(t.email_log).values(values)
    elif connection.dialect.name == "sqlite":
        statement = sqlite.insert(t.email_log).values(values)
    else:  # pragma: no cover - gcmc-jobs supports PostgreSQL and SQLite
        raise NotImplementedError(connection.dialect.name)
    try:
        # psycopg resets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it (the
        # tenant check below runs only for a new row).
        result = connection.execute(
            statement.on_conflict_do_nothing(index_elements=["dedup_key"]),
            execution_options={"preserve_rowcount": True},
        )
    except IntegrityError as exc:
        if tenant_id is not None and _is_foreign_key_violation(exc):
            raise _unknown_tenant(tenant_id, kind) from None
        raise
    if tenant_id is not None and result.rowcount == 1:
        known = connection.scalar(select(exists().where(t.tenants.c.id == tenant_id)))
        if not known:  # the caller's transaction rolls the new row back
            raise _unknown_tenant(tenant_id, kind)


def _unknown_tenant(tenant_id: Id, kind: str) -> UnknownTenant:
    return UnknownTenant(
        f"no tenant has id {tenant_id}: the {kind!r} email for it is not sent "
        "(check the tenant_id the host passed)"
    )


def _is_foreign_key_violation(exc: IntegrityError) -> bool:
    # psycopg: SQLSTATE 23503; SQLite (with PRAGMA foreign_keys=ON): its message.
    return getattr(exc.orig, "sqlstate", None) == "23503" or "FOREIGN KEY" in str(exc.orig)


def claim(connection: Connection, dedup_key: str) -> bool:
    """Count an attempt and take the right to send; False when already sent or suppressed.

    Call inside the transaction that sends and records the outcome (see module docstring).
    """
    log = tables_of(connection).email_log
    result = connection.execute(
        update(log)
        .where(log.c.dedup_key == dedup_key, log.c.status.in_(_CLAIMABLE))
        .values(attempts=log.c.attempts + 1)
    )
    return result.rowcount == 1


def mark_sent(connection: Connection, dedup_key: str, provider_message_id: str) -> None:
    """Record that the server accepted the email."""
    log = tables_of(connection).email_log
    connection.execute(
        update(log)
        .where(log.c.dedup_key == dedup_key)
        .values(
            status=EmailStatus.SENT,
            provider_message_id=provider_message_id[:998],
            sent_at=datetime.now(UTC),
            error=None,
        )
    )


def mark_failed(connection: Connection, dedup_key: str, error: str) -> None:
    """Record that the email failed for good (a 5xx, or retries exhausted)."""
    log = tables_of(connection).email_log
    connection.execute(
        update(log)
        .where(log.c.dedup_key == dedup_key)
        .values(status=EmailStatus.FAILED, error=error[:_ERROR_MAX])
    )


def note_transient_error(connection: Connection, dedup_key: str, error: str) -> None:
    """Keep the last transient error; the row stays ``queued`` for the next attempt."""
    log = tables_of(connection).email_log
    connection.execute(
        update(log).where(log.c.dedup_key == dedup_key).values(error=error[:_ERROR_MAX])
    )


def mark_suppressed(connection: Connection, dedup_key: str, reason: str) -> None:
    """Record that the address is suppressed: not mailed, not an error to retry."""
    log = tables_of(connection).email_log
    connection.execute(
        update(log)
        .where(log.c.dedup_key == dedup_key)
        .values(status=EmailStatus.SUPPRESSED, error=f"address suppressed ({reason})")
    )


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
    log = tables_of(connection).email_log
    row = connection.execute(select(log).where(log.c.dedup_key == dedup_key)).first()
    if row is None:
        return None
    values = row._mapping
    return LogEntry(
        dedup_key=values["dedup_key"],
        tenant_id=values["tenant_id"],
        to_address=values["to_address"],
        kind=values["kind"],
        subject=values["subject"],
        status=EmailStatus(values["status"]),
        provider_message_id=values["provider_message_id"],
        error=values["error"],
        attempts=values["attempts"],
        created_at=values["created_at"],
        sent_at=values["sent_at"],
    )

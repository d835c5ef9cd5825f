"""The delivery record both channels share: one row per logical message, keyed by its dedup
key, claimed in the transaction that sends it (``email_log``, ``sms_log``).

::

    queued ──claim──▶ (send) ──▶ sent        provider_message_id, sent_at
       ▲                 │
       └── transient ◀───┤                   error kept, attempts counted, still queued
                         └──▶ failed          refused for good, or retries exhausted
    queued ──▶ suppressed                     the recipient is on the channel's suppressions

**Claiming a send.** :meth:`DeliveryLog.claim` is a conditional ``UPDATE … SET attempts =
attempts + 1 WHERE dedup_key = :k AND status IN ('queued', 'failed')``, run in the
transaction that stays open while the message is handed to the provider and that records the
outcome. A second worker processing the same key blocks on that row (PostgreSQL row lock;
SQLite's write lock), then re-evaluates the condition against the committed row: ``sent`` →
zero rows → it sends nothing. The same statement works on both databases; no ``SELECT … FOR
UPDATE`` is needed.

Every method takes a SQLAlchemy ``Connection`` and issues a constant number of statements on
the connection's mapped tables (:func:`~gcmc_jobs.db.tables.tables_of`). The channel modules
(:mod:`gcmc_jobs.services.email_log`, :mod:`gcmc_jobs.services.sms_log`) each hold one
:class:`DeliveryLog` and keep their own columns, suppression lists and row types.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import UnknownTenant

__all__ = ["ERROR_MAX", "DeliveryLog", "Outcome"]

#: The longest error text kept in a row (and in a suppression's detail), characters.
ERROR_MAX = 2_000


class Outcome(enum.StrEnum):
    """What delivering one logical message did (when it raised nothing)."""

    SENT = "sent"
    #: The key was already sent (or suppressed) by an earlier message: nothing sent.
    ALREADY_DONE = "already_done"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class DeliveryLog:
    """One channel's delivery record: the table, its status enum and how the channel names
    what it sends (``"email"``, ``"SMS"``) and whom (``"address"``, ``"number"``)."""

    table: str
    statuses: type[enum.StrEnum]
    noun: str
    recipient: str
    #: Fits the provider's message id in the column (the column's width differs).
    provider_id: Callable[[str], str]

    def _table(self, connection: Connection) -> Table:
        table: Table = getattr(tables_of(connection), self.table)
        return table

    def _status(self, name: str) -> enum.StrEnum:
        return self.statuses[name]

    def ensure_queued(
        self,
        connection: Connection,
        *,
        dedup_key: str,
        kind: str,
        tenant_id: Id | None,
        **columns: Any,
    ) -> None:
        """Insert the row as ``queued`` unless one with this key exists (then change nothing).

        Raises :class:`~gcmc_jobs.errors.UnknownTenant` (permanent: dead-lettered at once,
        never retried) when ``tenant_id`` names no tenant. The foreign key would say so on our
        own schema, but a host's tenants table may carry none, so when the row is new the
        tenant's existence is checked in the same transaction (one indexed lookup, once per
        message).
        """
        values = {
            "dedup_key": dedup_key,
            "tenant_id": tenant_id,
            "kind": kind,
            **columns,
            "status": self._status("QUEUED"),
            "attempts": 0,
        }
        t = tables_of(connection)
        log = getattr(t, self.table)
        statement: postgresql.Insert | sqlite.Insert
        if connection.dialect.name == "postgresql":
            statement = postgresql.insert(log).values(values)
        elif connection.dialect.name == "sqlite":
            statement = sqlite.insert(log).values(values)
        else:  # pragma: no cover - gcmc-jobs supports PostgreSQL and SQLite
            raise NotImplementedError(connection.dialect.name)
        try:
            # psycopg resets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it
            # (the tenant check below runs only for a new row).
            result = connection.execute(
                statement.on_conflict_do_nothing(index_elements=["dedup_key"]),
                execution_options={"preserve_rowcount": True},
            )
        except IntegrityError as exc:
            if tenant_id is not None and _is_foreign_key_violation(exc):
                raise self._unknown_tenant(tenant_id, kind) from None
            raise
        if tenant_id is not None and result.rowcount == 1:
            known = connection.scalar(select(exists().where(t.tenants.c.id == tenant_id)))
            if not known:  # the caller's transaction rolls the new row back
                raise self._unknown_tenant(tenant_id, kind)

    def _unknown_tenant(self, tenant_id: Id, kind: str) -> UnknownTenant:
        return UnknownTenant(
            f"no tenant has id {tenant_id}: the {kind!r} {self.noun} for it is not sent "
            "(check the tenant_id the host passed)"
        )

    def claim(self, connection: Connection, dedup_key: str) -> bool:
        """Count an attempt and take the right to send; False when already sent or
        suppressed.

        Call inside the transaction that sends and records the outcome (module docstring).
        """
        log = self._table(connection)
        claimable = (self._status("QUEUED"), self._status("FAILED"))
        result = connection.execute(
            update(log)
            .where(log.c.dedup_key == dedup_key, log.c.status.in_(claimable))
            .values(attempts=log.c.attempts + 1)
        )
        return result.rowcount == 1

    def _set(self, connection: Connection, dedup_key: str, **values: Any) -> None:
        log = self._table(connection)
        connection.execute(update(log).where(log.c.dedup_key == dedup_key).values(**values))

    def mark_sent(self, connection: Connection, dedup_key: str, provider_message_id: str) -> None:
        """Record that the provider accepted the message."""
        self._set(
            connection,
            dedup_key,
            status=self._status("SENT"),
            provider_message_id=self.provider_id(provider_message_id),
            sent_at=datetime.now(UTC),
            error=None,
        )

    def mark_failed(self, connection: Connection, dedup_key: str, error: str) -> None:
        """Record that the message failed for good (refused, or retries exhausted)."""
        self._set(connection, dedup_key, status=self._status("FAILED"), error=error[:ERROR_MAX])

    def note_transient_error(self, connection: Connection, dedup_key: str, error: str) -> None:
        """Keep the last transient error; the row stays ``queued`` for the next attempt."""
        self._set(connection, dedup_key, error=error[:ERROR_MAX])

    def note_error(
        self, connection: Connection, dedup_key: str, error: str, *, final_attempt: bool
    ) -> None:
        """A transient error: kept on the row, which stays ``queued`` for the next attempt,
        unless this attempt was the last (``final_attempt``): then ``failed``."""
        if final_attempt:
            self.mark_failed(connection, dedup_key, error)
        else:
            self.note_transient_error(connection, dedup_key, error)

    def mark_suppressed(self, connection: Connection, dedup_key: str, reason: str) -> None:
        """Record that the recipient is suppressed: not sent to, not an error to retry."""
        self._set(
            connection,
            dedup_key,
            status=self._status("SUPPRESSED"),
            error=f"{self.recipient} suppressed ({reason})",
        )

    def get(self, connection: Connection, dedup_key: str) -> dict[str, Any] | None:
        """The row of ``dedup_key`` as plain values (its status as the enum, no ``id``), or
        None."""
        log = self._table(connection)
        row = connection.execute(select(log).where(log.c.dedup_key == dedup_key)).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values.pop("id")
        values["status"] = self.statuses(values["status"])
        return values


def _is_foreign_key_violation(exc: IntegrityError) -> bool:
    # psycopg: SQLSTATE 23503; SQLite (with PRAGMA foreign_keys=ON): its message.
    return getattr(exc.orig, "sqlstate", None) == "23503" or "FOREIGN KEY" in str(exc.orig)

"""The suppression list, managed: list, add, remove, and the record of who changed it
(issue 13, item 3).

Every change is one set-based statement plus one line per address in
``email_suppression_changes`` naming its actor: ``cli:<user>``, ``api``, ``provider:ses``,
``dsn``, ``smtp``. Addresses are stored lower-cased and compared case-insensitively, like
:func:`gcmc_jobs.services.email_log.suppression_reason`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, String, bindparam, func, or_, select, text

from gcmc_jobs.db.enums import SuppressionReason
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.services import json_batch
from gcmc_jobs.services.bounces import record_suppression_changes

__all__ = ["Change", "Suppression", "add", "changes", "list_suppressions", "remove"]


@dataclass(frozen=True)
class Suppression:
    """One suppressed address: why, since when, who or what added it, and the event."""

    address: str
    reason: SuppressionReason
    created_at: datetime
    source: str | None
    event_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "reason": self.reason.value,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "event_id": self.event_id,
        }


@dataclass(frozen=True)
class Change:
    """One line of the suppression list's history."""

    address: str
    action: str
    reason: str | None
    actor: str
    event_id: str | None
    changed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action,
            "reason": self.reason,
            "actor": self.actor,
            "event_id": self.event_id,
            "changed_at": self.changed_at.isoformat(),
        }


def list_suppressions(
    connection: Connection,
    *,
    search: str | None = None,
    reason: SuppressionReason | None = None,
    limit: int = 100,
) -> list[Suppression]:
    """Suppressed addresses, newest first; ``search`` matches part of the address
    (case-insensitive), ``reason`` one reason."""
    s = tables_of(connection).email_suppressions
    query = select(s).order_by(s.c.created_at.desc(), s.c.address).limit(limit)
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(s.c.address).like(f"%{escaped}%", escape="\\"))
    if reason is not None:
        query = query.where(s.c.reason == reason)
    return [
        Suppression(
            address=row.address,
            reason=SuppressionReason(row.reason),
            created_at=row.created_at,
            source=row.source,
            event_id=row.event_id,
        )
        for row in connection.execute(query)
    ]


def add(
    connection: Connection,
    entries: Sequence[tuple[str, SuppressionReason]],
    *,
    actor: str,
    now: datetime | None = None,
) -> list[str]:
    """Suppress each ``(address, reason)`` not already suppressed (whatever its reason);
    returns the addresses added. Two statements whatever the number of entries."""
    if not entries:
        return []
    now = now or datetime.now(UTC)
    t = tables_of(connection)
    table = connection.dialect.identifier_preparer.format_table(t.email_suppressions)
    source = json_batch.rows_source(connection, {"address": "text", "reason": "text"}, "v")
    statement = text(
        f"INSERT INTO {table} (address, reason, created_at, source) "
        "SELECT lower(v.address), min(v.reason), :now, :actor "
        f"FROM {source} WHERE NOT EXISTS (SELECT 1 FROM {table} s "
        "WHERE lower(s.address) = lower(v.address)) "
        "GROUP BY lower(v.address) "
        "ON CONFLICT (address) DO NOTHING RETURNING address, reason"
    ).bindparams(
        bindparam("batch", type_=String()),
        bindparam("now", type_=DateTime(timezone=True)),
        bindparam("actor", type_=String()),
    )
    batch = json_batch.encode(
        {"address": a.strip(), "reason": SuppressionReason(r).value} for a, r in entries
    )
    result = connection.execute(statement, {"batch": batch, "now": now, "actor": actor})
    rows = [(str(row[0]), str(row[1])) for row in result]
    record_suppression_changes(
        connection,
        [{"address": a, "action": "added", "reason": r, "actor": actor} for a, r in rows],
        now=now,
    )
    return [a for a, _ in rows]


def remove(
    connection: Connection, addresses: Sequence[str], *, actor: str, now: datetime | None = None
) -> list[str]:
    """Lift the suppression of ``addresses`` (case-insensitive); returns those removed. Two
    statements whatever the number of addresses."""
    if not addresses:
        return []
    s = tables_of(connection).email_suppressions
    lowered = sorted({a.strip().lower() for a in addresses})
    removed = connection.execute(
        s.delete()
        .where(func.lower(s.c.address).in_(lowered))
        .returning(s.c.address, s.c.reason, s.c.event_id)
    ).all()
    record_suppression_changes(
        connection,
        [
            {"address": a, "action": "removed", "reason": r, "actor": actor, "event_id": e}
            for a, r, e in removed
        ],
        now=now,
    )
    return [a for a, _, _ in removed]


def changes(
    connection: Connection, *, address: str | None = None, limit: int = 100
) -> list[Change]:
    """The history of the suppression list, newest first (of one address when given)."""
    c = tables_of(connection).email_suppression_changes
    query = select(c).order_by(c.c.changed_at.desc(), c.c.id.desc()).limit(limit)
    if address:
        query = query.where(or_(func.lower(c.c.address) == address.strip().lower()))
    return [
        Change(
            address=row.address,
            action=row.action,
            reason=row.reason,
            actor=row.actor,
            event_id=row.event_id,
            changed_at=row.changed_at,
        )
        for row in connection.execute(query)
    ]

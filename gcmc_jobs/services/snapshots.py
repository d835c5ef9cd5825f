"""Daily compliance snapshots: one row per tenant and local day, for trends.

Each compliance refresh ends with :func:`record_snapshot`, in the refresh's transaction: one
``INSERT … SELECT … GROUP BY … ON CONFLICT (tenant_id, day) DO UPDATE`` that sums the
tenant's active clients' current scores into ``compliance_snapshots`` (clients per level,
average score, the four counts summed). A second refresh on the same local day replaces
that day's row, so the table holds the last state of each day and a trend over months
reads at most one row per day instead of rescanning the history (DOMAIN.md, "Events and
reports"). A tenant with no active client gets a row of zeros: the trend shows the day.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Date, Integer, and_, bindparam, case, cast, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from gcmc_jobs.db.enums import ComplianceLevel
from gcmc_jobs.db.tables import Id, Tables

__all__ = ["SNAPSHOT_COLUMNS", "record_snapshot"]

#: The figures of a snapshot row, besides its key and ``computed_at``.
SNAPSHOT_COLUMNS = (
    "clients",
    "low",
    "medium",
    "high",
    "average_score",
    "missing_count",
    "expired_count",
    "expiring_count",
    "overdue_count",
)

_STATEMENTS: dict[tuple[str, int], Any] = {}


def _statement(dialect: str, t: Tables) -> Any:
    """The snapshot upsert for ``dialect`` on ``t``, built once (parameters ``tenant_id``,
    ``day``, ``now``)."""
    key = (dialect, id(t))
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = _build(dialect, t)
    return statement


def _build(dialect: str, t: Tables) -> Any:
    scores, client, snapshots = t.compliance_scores.c, t.clients.c, t.compliance_snapshots
    tenant_id = bindparam("tenant_id", type_=snapshots.c.tenant_id.type)
    day = bindparam("day", type_=Date())
    now = bindparam("now", type_=snapshots.c.computed_at.type)
    level_type = scores.level.type

    def per_level(level: ComplianceLevel) -> Any:
        # A literal of the level column's type binds as the mapping's stored value.
        match = scores.level == cast(literal(level, level_type), level_type)
        return func.coalesce(func.sum(case((match, 1), else_=0)), 0)

    def total(column: Any) -> Any:
        return cast(func.coalesce(func.sum(column), 0), Integer)

    # Aggregating from a one-row SELECT of the parameters keeps a tenant without active
    # clients in: an aggregate without GROUP BY always returns one row.
    rows = (
        select(
            tenant_id,
            day,
            cast(func.count(scores.client_id), Integer),
            cast(per_level(ComplianceLevel.LOW), Integer),
            cast(per_level(ComplianceLevel.MEDIUM), Integer),
            cast(per_level(ComplianceLevel.HIGH), Integer),
            func.coalesce(func.round(func.avg(scores.score), 2), 0),
            total(scores.missing_count),
            total(scores.expired_count),
            total(scores.expiring_count),
            total(scores.overdue_count),
            now,
        )
        .select_from(t.compliance_scores)
        .join(t.clients, client.id == scores.client_id)
        # Only the clients the refresh just scored: inactive ones keep an old score.
        .where(and_(client.tenant_id == tenant_id, client.is_active.is_(True)))
    )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = ["tenant_id", "day", *SNAPSHOT_COLUMNS, "computed_at"]
    statement = insert(snapshots).from_select(
        [snapshots.c[name] for name in columns], rows, include_defaults=False
    )
    return statement.on_conflict_do_update(
        index_elements=[snapshots.c.tenant_id, snapshots.c.day],
        set_={
            snapshots.c[name]: statement.excluded[name]
            for name in columns
            if name not in ("tenant_id", "day")
        },
    )


def record_snapshot(
    connection: Connection, t: Tables, tenant_id: Id, *, day: date, now: datetime
) -> None:
    """Write (or replace) ``tenant_id``'s snapshot of local ``day`` from its current scores:
    one statement, in the caller's transaction."""
    connection.execute(
        _statement(connection.dialect.name, t),
        {"tenant_id": tenant_id, "day": day, "now": now},
    )

"""What the dashboard summarises from the database: each tenant's clients by risk level, its
trend (``compliance_snapshots``, all tenants summed per day), and email delivery by kind and
status. One ``GROUP BY`` statement each, whatever the number of
tenants, clients or emails, on the connection's mapped tables (both presets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, func, select

from gcmc_jobs.db.enums import ComplianceLevel
from gcmc_jobs.db.tables import Id, tables_of

__all__ = [
    "MAX_TENANTS",
    "DeliveryCount",
    "RiskDay",
    "TenantRisk",
    "email_delivery",
    "risk_distribution",
    "risk_trend",
]

#: Tenants :func:`risk_distribution` returns at most (by name).
MAX_TENANTS = 1_000


@dataclass(frozen=True)
class TenantRisk:
    """One tenant (``id``, ``name``) and how many of its scored clients are at each risk
    ``levels`` (``low``, ``medium``, ``high``; zero when none)."""

    id: Id
    name: str | None
    levels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryCount:
    """How many emails of ``kind`` are in ``status`` (``email_log``)."""

    kind: str
    status: str
    count: int


@dataclass(frozen=True)
class RiskDay:
    """One local day of the compliance snapshots, summed over the tenants: clients at each
    risk level."""

    day: date
    low: int
    medium: int
    high: int


def risk_trend(
    connection: Connection, *, since: date, tenant_id: Id | None = None
) -> list[RiskDay]:
    """Each day since ``since`` that has snapshots, oldest first, with the tenants' clients
    summed per risk level (``compliance_snapshots``), or one tenant's (``tenant_id``): one
    statement."""
    snapshots = tables_of(connection).compliance_snapshots.c
    query = (
        select(
            snapshots.day,
            func.sum(snapshots.low),
            func.sum(snapshots.medium),
            func.sum(snapshots.high),
        )
        .where(snapshots.day >= since)
        .group_by(snapshots.day)
        .order_by(snapshots.day)
    )
    if tenant_id is not None:
        query = query.where(snapshots.tenant_id == tenant_id)
    rows = connection.execute(query).all()
    return [RiskDay(day, int(low), int(medium), int(high)) for day, low, medium, high in rows]


def risk_distribution(connection: Connection, *, limit: int = MAX_TENANTS) -> list[TenantRisk]:
    """Every tenant (active or not, at most ``limit``, by name) with its clients counted per
    compliance level (``compliance_scores``): one statement."""
    t = tables_of(connection)
    tenants = (
        select(t.tenants.c.id, t.tenants.c.name)
        .order_by(t.tenants.c.name, t.tenants.c.id)
        .limit(limit)
        .subquery("listed")
    )
    scores = t.compliance_scores.c
    rows = connection.execute(
        select(tenants.c.id, tenants.c.name, scores.level, func.count(scores.client_id))
        .select_from(tenants.outerjoin(t.compliance_scores, scores.tenant_id == tenants.c.id))
        .group_by(tenants.c.id, tenants.c.name, scores.level)
        .order_by(tenants.c.name, tenants.c.id)
    ).all()
    found: dict[Id, TenantRisk] = {}
    for tenant_id, name, level, count in rows:
        risk = found.get(tenant_id)
        if risk is None:
            risk = found[tenant_id] = TenantRisk(
                tenant_id, name, {str(lv): 0 for lv in ComplianceLevel}
            )
        if level is not None:
            risk.levels[str(level)] = int(count)
    return list(found.values())


def email_delivery(connection: Connection, *, since: datetime) -> list[DeliveryCount]:
    """The emails created since ``since`` counted per kind and status: one statement."""
    log = tables_of(connection).email_log
    rows = connection.execute(
        select(log.c.kind, log.c.status, func.count())
        .where(log.c.created_at >= since)
        .group_by(log.c.kind, log.c.status)
        .order_by(log.c.kind, log.c.status)
    ).all()
    return [DeliveryCount(kind, str(status), int(count)) for kind, status, count in rows]

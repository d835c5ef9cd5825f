"""Tenants' clocks: "today" and local times are always taken in the tenant's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload

__all__ = ["local_today", "tenant_zone", "utcnow"]


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def tenant_zone(name: str) -> ZoneInfo:
    """The tenant's timezone, with a clear error for a name that is not an IANA zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidPayload(f"unknown timezone {name!r}: use an IANA name such as 'UTC'") from exc


def local_today(session: Session, tenant_id: Id, now: datetime | None = None) -> date:
    """The tenant's local calendar date at ``now`` (default: the current instant)."""
    tenants = tables_of(session).tenants
    zone_name = session.scalar(select(tenants.c.timezone).where(tenants.c.id == tenant_id))
    if zone_name is None:
        raise InvalidPayload(f"no tenant with id {tenant_id}")
    return (now or utcnow()).astimezone(tenant_zone(zone_name)).date()

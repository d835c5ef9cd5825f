"""When the scheduler first saw each tenant: the ``scheduled_tenants`` table.

The platform's ``tenants`` table has no creation time (not on every mapping), yet a day's
run can be overdue only if the tenant existed then and the package was installed (issue
11, item 13: a fresh deployment was unhealthy for hours over runs that were never possible).
Each tick records, in one ``INSERT … SELECT … ON CONFLICT DO NOTHING``, the instant it first
finds each active tenant; the ledger read model
(:func:`gcmc_jobs.scheduling.ledger_view.job_statuses`) counts a run overdue only from
then. The first tick is after the installation, so that instant is never before it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, literal, select, true
from sqlalchemy.orm import Session

from gcmc_jobs.db.dialect import insert_for
from gcmc_jobs.db.tables import tables_of

__all__ = ["record_seen_tenants"]


def record_seen_tenants(session: Session, now: datetime) -> int:
    """Record ``now`` (aware) as the first sighting of every active tenant that has none;
    returns how many were new. One statement, whatever the number of tenants; a second
    scheduler racing this one loses quietly (``ON CONFLICT DO NOTHING``)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    t = tables_of(session)
    tenants, seen = t.tenants, t.scheduled_tenants
    new = select(tenants.c.id, literal(now, seen.c.first_seen_at.type)).where(
        tenants.c.is_active.is_(true()),
        ~exists().where(seen.c.tenant_id == tenants.c.id),
    )
    statement = (
        insert_for(session)(seen)
        .from_select(["tenant_id", "first_seen_at"], new)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
        .returning(seen.c.tenant_id)
    )
    return len(session.execute(statement).all())

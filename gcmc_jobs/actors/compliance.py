"""Compliance actors: refresh one tenant's scores, or fan out one message per tenant."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from gcmc_jobs import queue_names as queues
from gcmc_jobs.actors.webhooks import dispatch_webhooks
from gcmc_jobs.brokers import actor
from gcmc_jobs.db.engine import session_scope
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import PermanentError
from gcmc_jobs.logging.library import get_logger
from gcmc_jobs.runtime import current
from gcmc_jobs.services import compliance

__all__ = ["refresh_all_compliance", "refresh_compliance"]

# Actors return None: a return value without Dramatiq's Results middleware only earns a
# warning per message. What a run did is logged instead.
log = get_logger(__name__)


@actor(
    queue_name=queues.COMPLIANCE,
    max_retries=5,
    min_backoff=1_000,
    max_backoff=300_000,
    time_limit=600_000,
    throws=(PermanentError,),
)
def refresh_compliance(tenant_id: Id, today: str | None = None) -> None:
    """Recompute every active client's compliance score of one tenant, atomically.

    ``today`` (``YYYY-MM-DD``) pins the tenant's local date; by default it is taken in the
    tenant's timezone when the message runs. Safe to run twice: it rewrites the same scores.
    """
    with session_scope(current().engine) as session:
        result = compliance.refresh_tenant(
            session, tenant_id, today=date.fromisoformat(today) if today else None
        )
    log.info("compliance refreshed", **result.as_dict())
    if result.level_changes:
        # Committed: deliver the level-change webhooks now, not at the next minute.
        dispatch_webhooks.send()


@actor(
    queue_name=queues.COMPLIANCE,
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=60_000,
    throws=(PermanentError,),
)
def refresh_all_compliance() -> None:
    """Send one :func:`refresh_compliance` message per active tenant."""
    with session_scope(current().engine) as session:
        tenant = tables_of(session).tenants.c
        tenant_ids = session.scalars(
            select(tenant.id).where(tenant.is_active.is_(True)).order_by(tenant.id)
        ).all()
    for tenant_id in tenant_ids:
        refresh_compliance.send(tenant_id)
    log.info("compliance refresh fanned out", tenants=len(tenant_ids))

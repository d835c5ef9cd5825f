"""The host's own actors, on gcmc-jobs' broker with its whole middleware stack.

``@gcmc_jobs.actor`` declares them like the package's: dead letters when they fail for good,
a dedup key (here: one pending or recent sync per client), a rate limit (here: per tenant),
structured logging with the correlation id, the pause switch. Listed in
``GCMC_JOBS_HOST_MODULES``, this module is imported by ``configure()`` in every worker.
"""

from __future__ import annotations

from sqlalchemy import insert

import gcmc_jobs
from gcmc_jobs import PermanentError
from gcmc_jobs.db.engine import session_scope
from host_app.models import crm_syncs


@gcmc_jobs.actor(
    queue_name="host_crm",
    max_retries=3,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=30_000,
    throws=(PermanentError,),
    dedup_key="crm_sync:{client_id}",  # a second send while one is pending raises
    rate_limit_key="crm:{tenant_id}",  # at most GCMC_JOBS_RATE_LIMIT per tenant per window;
    # the templates read keyword arguments: send(client_id=..., tenant_id=...)
)
def sync_client_to_crm(client_id: int, tenant_id: int) -> None:
    """Push one client to the CRM (here: record that it was pushed)."""
    if client_id <= 0:
        raise PermanentError(f"no client {client_id}")  # dead-lettered at once, no retry
    with session_scope(gcmc_jobs.current().engine) as session:
        session.execute(insert(crm_syncs).values(client_id=client_id))

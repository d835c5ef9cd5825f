"""The host's own tenant-local daily job, run by gcmc-jobs' scheduler under its run ledger.

Once per active tenant per local day at 06:00 (tenant time), exactly once (the ``job_runs``
row), listed by ``gcmc-jobs schedules`` and ``gcmc-jobs runs``, re-run by
``gcmc-jobs run pending_review_count --tenant ID``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gcmc_jobs.db.models import Document, DocumentStatus, DocumentVersion
from gcmc_jobs.scheduling import JobContext, daily_job


@daily_job("pending_review_count", at="06:00")
def pending_review_count(ctx: JobContext) -> dict[str, Any]:
    """Count the tenant's documents whose latest version awaits review (one statement);
    the count lands in the run's ``stats``."""
    count = ctx.session.scalar(
        select(func.count())
        .select_from(Document)
        .join(DocumentVersion, DocumentVersion.id == Document.latest_version_id)
        .where(
            Document.tenant_id == ctx.tenant_id,
            DocumentVersion.status == DocumentStatus.PENDING_REVIEW,
        )
    )
    return {"pending_review": int(count or 0)}

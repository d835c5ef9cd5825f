"""The daily jobs, by name: what each does for one tenant on one local date.

Each job is a plain function of a :class:`JobContext` returning its counts, which the
runner stores in ``job_runs.stats``. A job issues a constant number of statements whatever
the tenant's size, and never touches another tenant's rows.

=================================  =======  ========================================================
job                                default  what it does (DOMAIN.md)
=================================  =======  ==============================================
``compliance_refresh``             02:00    every active client's compliance score
``document_expiry_emails``         07:00    a digest per recipient: documents expiring in
                                            exactly 30, 14, 7, 3 or 1 days
``document_expiry_notifications``  08:00    in-app: latest versions expiring in
                                            [today, today + 7]
``filing_reminder_emails``         08:00    a digest per recipient: open filings due in
                                            exactly 14, 7, 3 or 0 days, or 1 to 7 days late
``filing_reminders``               09:00    in-app: open filings due within 7 days, or late
=================================  =======  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from gcmc_jobs.errors import UnknownJob
from gcmc_jobs.services import compliance, digests, notifications
from gcmc_jobs.settings import DEFAULT_JOB_TIMES

__all__ = ["JOBS", "JOB_NAMES", "DigestSender", "JobContext", "SentDigests", "check_job"]


@dataclass(frozen=True)
class SentDigests:
    """What a :data:`DigestSender` did: digests enqueued, and dropped as already sent."""

    queued: int
    duplicates: int


#: Enqueues digest emails (in bulk) and says how many went out; the runner provides one.
DigestSender = Callable[[Sequence[digests.Digest]], SentDigests]


@dataclass(frozen=True)
class JobContext:
    """Everything a job needs: the session of its transaction, whose and which day it is."""

    session: Session
    tenant_id: int
    today: date
    now: datetime
    send_digests: DigestSender


def _compliance_refresh(ctx: JobContext) -> dict[str, Any]:
    result = compliance.refresh_tenant(ctx.session, ctx.tenant_id, today=ctx.today, now=ctx.now)
    return {"clients": result.clients}


def _notifications(
    notify: Callable[[Session, int, date], notifications.NotifyResult],
) -> Callable[[JobContext], dict[str, Any]]:
    def job(ctx: JobContext) -> dict[str, Any]:
        result = notify(ctx.session, ctx.tenant_id, ctx.today)
        return {
            "notifications_created": result.created,
            "skipped_duplicates": result.duplicates,
        }

    return job


def _emails(
    compute: Callable[[Session, int, date], list[digests.Digest]],
) -> Callable[[JobContext], dict[str, Any]]:
    def job(ctx: JobContext) -> dict[str, Any]:
        found = compute(ctx.session, ctx.tenant_id, ctx.today)
        sent = ctx.send_digests(found) if found else SentDigests(0, 0)
        return {
            "recipients": len(found),
            "items": sum(len(d.items) for d in found),
            "digests_queued": sent.queued,
            "skipped_duplicates": sent.duplicates,
        }

    return job


#: Every daily job by name; the default local times are ``Settings.job_times``.
JOBS: dict[str, Callable[[JobContext], dict[str, Any]]] = {
    "compliance_refresh": _compliance_refresh,
    "document_expiry_emails": _emails(digests.document_expiry_digests),
    "document_expiry_notifications": _notifications(notifications.notify_document_expiry),
    "filing_reminder_emails": _emails(digests.filing_reminder_digests),
    "filing_reminders": _notifications(notifications.notify_filing_reminders),
}
JOB_NAMES: tuple[str, ...] = tuple(DEFAULT_JOB_TIMES)
assert set(JOBS) == set(JOB_NAMES)


def check_job(name: str) -> str:
    """``name`` if it is a daily job, else :class:`UnknownJob` listing the known ones."""
    if name not in JOBS:
        raise UnknownJob(f"unknown job {name!r}; known jobs: {', '.join(JOB_NAMES)}")
    return name

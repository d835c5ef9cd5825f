"""Requesting and listing compliance reports on demand: what ``gcmc-jobs report`` and the
admin API (``POST /api/reports``) call.

:func:`request_report` checks the request in the caller (a month as ``YYYY-MM`` that has
begun in the tenant's timezone, a tenant that exists) and starts the report chain
(:func:`gcmc_jobs.actors.reports.start_report`); nothing is enqueued when it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gcmc_jobs.actors.reports import start_report
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload, UnknownTenant
from gcmc_jobs.runtime import Runtime
from gcmc_jobs.services import reports
from gcmc_jobs.services.tenancy import tenant_zone, utcnow

__all__ = ["ReportRequest", "default_period", "request_report"]

RequestStatus = Literal["requested", "pending", "already_completed"]


@dataclass(frozen=True)
class ReportRequest:
    """What :func:`request_report` did.

    ``status``: ``requested`` (the chain's first message is ``message_id``), ``pending`` (a
    chain for that report is already queued or running: its dedup key is taken; nothing
    sent), ``already_completed`` (the report exists; pass ``force`` to make it again).
    """

    status: RequestStatus
    tenant_id: Id
    period: str
    message_id: str | None = None
    report: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {
            "status": self.status,
            "tenant_id": self.tenant_id,
            "period": self.period,
            "message_id": self.message_id,
            "report": self.report,
        }


def _today(session: Session, tenant_id: Id, now: datetime | None) -> date:
    """The tenant's local date; :class:`UnknownTenant` when there is no such tenant."""
    columns = tables_of(session).tenants.c
    zone = session.scalar(select(columns.timezone).where(columns.id == tenant_id))
    if zone is None:
        raise UnknownTenant(f"no tenant with id {tenant_id}")
    return (now or utcnow()).astimezone(tenant_zone(zone)).date()


def default_period(runtime: Runtime, tenant_id: Id, *, now: datetime | None = None) -> date:
    """The month before the tenant's local today (what the monthly job reports on)."""
    with Session(runtime.engine) as session:
        return reports.previous_period(_today(session, tenant_id, now))


def request_report(
    runtime: Runtime,
    tenant_id: Id,
    period: str | date,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> ReportRequest:
    """Start ``tenant_id``'s report chain for ``period`` (``YYYY-MM``). Raises
    :class:`~gcmc_jobs.errors.InvalidPayload` for a malformed period or a month that has
    not begun in the tenant's timezone, :class:`~gcmc_jobs.errors.UnknownTenant` for an
    unknown tenant; nothing is enqueued then."""
    month = reports.parse_period(period) if isinstance(period, str) else period.replace(day=1)
    label = reports.month_label(month)
    with Session(runtime.engine) as session:
        today = _today(session, tenant_id, now)
        if month > today:
            raise InvalidPayload(
                f"period {label} has not begun for tenant {tenant_id} (its today is {today})"
            )
        existing = reports.find_report(session, tenant_id, month)
    if existing is not None and existing.status == "completed" and not force:
        return ReportRequest("already_completed", tenant_id, label, report=existing.as_dict())
    message_id = start_report(tenant_id, month, force=force)
    if message_id is None:
        return ReportRequest("pending", tenant_id, label)
    return ReportRequest("requested", tenant_id, label, message_id=message_id)

"""Monthly compliance reports: the data of each step of the report chain, and its record.

A report covers one tenant and one calendar month (its *period*, ``2026-11``). The chain
(``gcmc_jobs.actors.reports``) has four steps; each reads what the previous one stored in
the database and writes its own result there, so any step can run again, alone, on any
worker:

1. :func:`aggregate` — the figures (set-based: a constant number of statements whatever the
   number of clients), stored in ``reports.data`` (status ``aggregated``);
2. :func:`store_files` — the PDF and CSV rendered from those figures
   (:mod:`gcmc_jobs.services.report_documents`), stored in ``report_files`` with their
   SHA-256 (status ``rendered``);
3. :func:`record_recipients` — who was mailed them (status ``emailed``);
4. :func:`complete` — the record is final (status ``completed``): period, files, checksums
   (checked against the stored bytes), recipients.

What the report holds (DOMAIN.md, "Events and reports"):

- ``distribution``: the tenant's active clients per risk level and their average score, from
  their current scores (the refresh that ran last);
- ``trend``: twelve months ending with the period, each month's last daily snapshot
  (``compliance_snapshots``); a month without one is ``null``;
- ``top_clients``: the 20 highest-risk active clients (lowest score first, then most open
  issues, then name);
- ``overdue_filings``: open filings of active clients due on or before the period's last day;
- ``clients``: every active client's score and counts (the CSV).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, true, update
from sqlalchemy.orm import Session

from gcmc_jobs.db.dialect import insert_for
from gcmc_jobs.db.enums import OPEN_FILING_STATUSES, NotificationCategory, Role
from gcmc_jobs.db.tables import Id, tables_of
from gcmc_jobs.errors import InvalidPayload, PermanentError
from gcmc_jobs.services.tenancy import tenant_zone

__all__ = [
    "REPORT_ROLES",
    "TOP_CLIENTS",
    "TREND_MONTHS",
    "Recipient",
    "ReportFile",
    "ReportState",
    "aggregate",
    "complete",
    "files_of",
    "find_report",
    "list_reports",
    "month_label",
    "parse_period",
    "previous_period",
    "record_recipients",
    "report_recipients",
    "store_files",
]

#: Highest-risk clients the report lists.
TOP_CLIENTS = 20
#: Months of the trend, the period included.
TREND_MONTHS = 12
#: Who receives a tenant's report (DOMAIN.md): active owners and admins whose ``documents``
#: email channel is on (and whose address is not suppressed).
REPORT_ROLES = (Role.OWNER, Role.ADMIN)

#: The steps' statuses, in order.
STATUSES = ("aggregated", "rendered", "emailed", "completed")


def parse_period(value: str) -> date:
    """``YYYY-MM`` as the first day of that month; :class:`InvalidPayload` otherwise."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(value)
        return date(int(year), int(month), 1)
    except (ValueError, AttributeError):
        raise InvalidPayload(f"period {value!r}: expected a month as YYYY-MM") from None


def month_label(period: date) -> str:
    """``2026-11`` for any day of November 2026."""
    return f"{period.year:04d}-{period.month:02d}"


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def previous_period(today: date) -> date:
    """The first day of the month before ``today``'s (what the monthly run reports on)."""
    return _add_months(today.replace(day=1), -1)


def _last_day(period: date) -> date:
    return _add_months(period, 1) - timedelta(days=1)


@dataclass(frozen=True)
class ReportState:
    """A ``reports`` row: where the chain is for one tenant and month."""

    id: int
    tenant_id: Id
    period: date
    status: str
    data: dict[str, Any]
    files: list[dict[str, Any]]
    recipients: list[dict[str, Any]]
    requested_at: datetime
    aggregated_at: datetime | None
    rendered_at: datetime | None
    emailed_at: datetime | None
    completed_at: datetime | None

    def reached(self, status: str) -> bool:
        """Whether the chain got at least as far as ``status``."""
        return STATUSES.index(self.status) >= STATUSES.index(status)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the figures), as the CLI and the API show it."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "period": month_label(self.period),
            "status": self.status,
            "files": self.files,
            "recipients": self.recipients,
            "requested_at": _iso(self.requested_at),
            "aggregated_at": _iso(self.aggregated_at),
            "rendered_at": _iso(self.rendered_at),
            "emailed_at": _iso(self.emailed_at),
            "completed_at": _iso(self.completed_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ReportFile:
    """One rendered file of a report."""

    name: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of :attr:`content`."""
        return hashlib.sha256(self.content).hexdigest()

    def describe(self) -> dict[str, Any]:
        """The file as ``reports.files`` records it: name, type, size, checksum."""
        return {
            "name": self.name,
            "content_type": self.content_type,
            "size": len(self.content),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Recipient:
    """Someone a report goes to."""

    user_id: Id
    name: str
    email: str


# -- step 1: aggregate -------------------------------------------------------------------------


def aggregate(session: Session, tenant_id: Id, period: date, *, now: datetime) -> ReportState:
    """Compute the report of ``tenant_id`` for the month of ``period`` and store it
    (``reports`` upserted on (tenant, period), status ``aggregated``; files and recipients of
    an earlier run of the same report are cleared). Six statements whatever the size of the
    tenant. Raises :class:`InvalidPayload` for an unknown tenant."""
    t = tables_of(session)
    period = period.replace(day=1)
    last_day = _last_day(period)
    tenant = t.tenants.c
    row = session.execute(
        select(tenant.id, tenant.name, tenant.timezone).where(tenant.id == tenant_id)
    ).one_or_none()
    if row is None:
        raise InvalidPayload(f"no tenant with id {tenant_id}")
    tenant_zone(row.timezone)  # a clear error for a timezone that is not an IANA name
    clients = _clients(session, tenant_id)
    data = {
        "tenant": {"id": row.id, "name": row.name, "timezone": row.timezone},
        "period": month_label(period),
        "period_start": period.isoformat(),
        "period_end": last_day.isoformat(),
        "generated_at": now.isoformat(),
        "distribution": _distribution(clients),
        "trend": _trend(session, tenant_id, period, last_day),
        "top_clients": clients[:TOP_CLIENTS],
        "overdue_filings": _overdue_filings(session, tenant_id, last_day),
        "clients": clients,
    }
    reports = t.reports
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "period": period,
        "status": "aggregated",
        "data": data,
        "files": [],
        "recipients": [],
        "requested_at": now,
        "aggregated_at": now,
        "rendered_at": None,
        "emailed_at": None,
        "completed_at": None,
    }
    statement = insert_for(session)(reports).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[reports.c.tenant_id, reports.c.period],
        set_={k: statement.excluded[k] for k in values if k not in ("tenant_id", "period")},
    )
    session.execute(statement)
    state = find_report(session, tenant_id, period)
    assert state is not None
    return state


def _clients(session: Session, tenant_id: Id) -> list[dict[str, Any]]:
    """Every active client's current score, highest risk first."""
    t = tables_of(session)
    client, score = t.clients.c, t.compliance_scores.c
    issues = score.missing_count + score.expired_count + score.expiring_count + score.overdue_count
    rows = session.execute(
        select(
            client.id,
            client.name,
            score.score,
            score.level,
            score.missing_count,
            score.expired_count,
            score.expiring_count,
            score.overdue_count,
            score.computed_at,
        )
        .select_from(t.clients)
        .join(t.compliance_scores, score.client_id == client.id)
        .where(client.tenant_id == tenant_id, client.is_active.is_(true()))
        .order_by(score.score, issues.desc(), client.name, client.id)
    ).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "score": int(r.score),
            "level": str(r.level.value if hasattr(r.level, "value") else r.level),
            "missing": int(r.missing_count),
            "expired": int(r.expired_count),
            "expiring": int(r.expiring_count),
            "overdue": int(r.overdue_count),
            "computed_at": r.computed_at.isoformat() if r.computed_at else None,
        }
        for r in rows
    ]


def _distribution(clients: list[dict[str, Any]]) -> dict[str, Any]:
    levels = {"low": 0, "medium": 0, "high": 0}
    for client in clients:
        levels[client["level"]] += 1
    average = round(sum(c["score"] for c in clients) / len(clients), 2) if clients else None
    return {"clients": len(clients), **levels, "average_score": average}


def _trend(session: Session, tenant_id: Id, period: date, last_day: date) -> list[dict[str, Any]]:
    """The last snapshot of each of the twelve months ending with ``period`` (one
    statement: at most 366 rows)."""
    snapshots = tables_of(session).compliance_snapshots
    first = _add_months(period, 1 - TREND_MONTHS)
    rows = session.execute(
        select(snapshots)
        .where(
            snapshots.c.tenant_id == tenant_id,
            snapshots.c.day >= first,
            snapshots.c.day <= last_day,
        )
        .order_by(snapshots.c.day)
    ).all()
    last_of_month: dict[str, Any] = {}
    for row in rows:
        last_of_month[month_label(row.day)] = row
    trend = []
    for offset in range(TREND_MONTHS):
        label = month_label(_add_months(first, offset))
        r = last_of_month.get(label)
        trend.append(
            {"month": label, "day": None}
            if r is None
            else {
                "month": label,
                "day": r.day.isoformat(),
                "clients": r.clients,
                "low": r.low,
                "medium": r.medium,
                "high": r.high,
                "average_score": float(r.average_score),
                "missing": r.missing_count,
                "expired": r.expired_count,
                "expiring": r.expiring_count,
                "overdue": r.overdue_count,
            }
        )
    return trend


def _overdue_filings(session: Session, tenant_id: Id, last_day: date) -> list[dict[str, Any]]:
    """Open filings of active clients due on or before ``last_day``, oldest first."""
    t = tables_of(session)
    filing, client = t.filings.c, t.clients.c
    rows = session.execute(
        select(
            filing.id,
            client.name.label("client_name"),
            filing.filing_type,
            filing.period_end,
            filing.due_date,
            filing.status,
        )
        .select_from(t.filings)
        .join(t.clients, client.id == filing.client_id)
        .where(
            filing.tenant_id == tenant_id,
            filing.status.in_(OPEN_FILING_STATUSES),
            filing.due_date <= last_day,
            client.is_active.is_(true()),
        )
        .order_by(filing.due_date, client.name, filing.id)
    ).all()
    return [
        {
            "id": r.id,
            "client_name": r.client_name,
            "filing_type": r.filing_type,
            "period_end": r.period_end.isoformat() if r.period_end else None,
            "due_date": r.due_date.isoformat(),
            "status": str(r.status.value if hasattr(r.status, "value") else r.status),
            "days_overdue": (last_day - r.due_date).days,
        }
        for r in rows
    ]


# -- reading a report --------------------------------------------------------------------------


def _state(row: Any) -> ReportState:
    return ReportState(
        id=row.id,
        tenant_id=row.tenant_id,
        period=row.period,
        status=row.status,
        data=row.data,
        files=row.files or [],
        recipients=row.recipients or [],
        requested_at=row.requested_at,
        aggregated_at=row.aggregated_at,
        rendered_at=row.rendered_at,
        emailed_at=row.emailed_at,
        completed_at=row.completed_at,
    )


def find_report(session: Session, tenant_id: Id, period: date) -> ReportState | None:
    """The report of ``tenant_id`` for ``period``'s month, or None (one statement)."""
    reports = tables_of(session).reports
    found = session.execute(
        select(reports).where(
            reports.c.tenant_id == tenant_id, reports.c.period == period.replace(day=1)
        )
    ).one_or_none()
    return None if found is None else _state(found)


def require_report(session: Session, tenant_id: Id, period: date, status: str) -> ReportState:
    """The report, which must have reached ``status``; a :class:`PermanentError` otherwise
    (the step before it never ran: replay that step's dead letter, or request the report
    again)."""
    state = find_report(session, tenant_id, period)
    if state is None or not state.reached(status):
        found = "no report" if state is None else f"a report at {state.status!r}"
        raise PermanentError(
            f"report of tenant {tenant_id} for {month_label(period)}: expected one at "
            f"{status!r} or later, found {found}"
        )
    return state


def list_reports(
    session: Session, *, tenant_id: Id | None = None, limit: int = 100
) -> list[ReportState]:
    """Reports, newest period first (one statement)."""
    reports = tables_of(session).reports
    query = select(reports).order_by(reports.c.period.desc(), reports.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(reports.c.tenant_id == tenant_id)
    return [_state(row) for row in session.execute(query)]


def files_of(session: Session, report_id: int) -> list[ReportFile]:
    """The stored files of a report, by name (one statement)."""
    files = tables_of(session).report_files
    rows = session.execute(
        select(files.c.name, files.c.content_type, files.c.content)
        .where(files.c.report_id == report_id)
        .order_by(files.c.name)
    ).all()
    return [ReportFile(r.name, r.content_type, bytes(r.content)) for r in rows]


# -- step 2: files -----------------------------------------------------------------------------


def store_files(
    session: Session, state: ReportState, files: list[ReportFile], *, now: datetime
) -> ReportState:
    """Replace the report's files with ``files`` and record them (status ``rendered``):
    three statements."""
    t = tables_of(session)
    stored = t.report_files
    session.execute(delete(stored).where(stored.c.report_id == state.id))
    session.execute(
        insert(stored),
        [
            {
                "report_id": state.id,
                "name": f.name,
                "content_type": f.content_type,
                "size": len(f.content),
                "sha256": f.sha256,
                "content": f.content,
            }
            for f in files
        ],
    )
    described = [f.describe() for f in files]
    session.execute(
        update(t.reports)
        .where(t.reports.c.id == state.id)
        .values(
            status="rendered", files=described, rendered_at=now, emailed_at=None, completed_at=None
        )
    )
    return _replace(
        state,
        status="rendered",
        files=described,
        rendered_at=now,
        emailed_at=None,
        completed_at=None,
    )


def _replace(state: ReportState, **changes: Any) -> ReportState:
    return replace(state, **changes)


# -- step 3: recipients ------------------------------------------------------------------------


def report_recipients(session: Session, tenant_id: Id) -> list[Recipient]:
    """The tenant's active owners and admins whose ``documents`` email channel is on (no
    preference row: on), minus suppressed addresses; by name (one statement)."""
    t = tables_of(session)
    member, person, preference = t.tenant_users.c, t.users.c, t.notification_preferences
    suppressions = t.email_suppressions.c
    rows = session.execute(
        select(person.id, person.name, person.email)
        .select_from(t.tenant_users)
        .join(t.users, person.id == member.user_id)
        .outerjoin(
            preference,
            and_(
                preference.c.user_id == person.id,
                preference.c.tenant_id == tenant_id,
                preference.c.category == NotificationCategory.DOCUMENTS,
            ),
        )
        .where(
            member.tenant_id == tenant_id,
            member.role.in_(REPORT_ROLES),
            person.is_active.is_(true()),
            func.coalesce(preference.c.email, true()).is_(true()),
            ~select(suppressions.address)
            .where(func.lower(suppressions.address) == func.lower(person.email))
            .exists(),
        )
        .order_by(person.name, person.id)
    ).all()
    return [Recipient(r.id, r.name, r.email) for r in rows]


def record_recipients(
    session: Session, state: ReportState, recipients: list[dict[str, Any]], *, now: datetime
) -> ReportState:
    """Record who the report went to and how (status ``emailed``): one statement."""
    reports = tables_of(session).reports
    session.execute(
        update(reports)
        .where(reports.c.id == state.id)
        .values(status="emailed", recipients=recipients, emailed_at=now, completed_at=None)
    )
    return _replace(
        state, status="emailed", recipients=recipients, emailed_at=now, completed_at=None
    )


# -- step 4: the record ------------------------------------------------------------------------


def complete(session: Session, state: ReportState, *, now: datetime) -> ReportState:
    """Check the stored files against their recorded checksums and mark the report
    ``completed``: two statements. A file whose bytes no longer match is a
    :class:`PermanentError` (render the report again)."""
    stored = {f.name: f.sha256 for f in files_of(session, state.id)}
    recorded = {f["name"]: f["sha256"] for f in state.files}
    if stored != recorded:
        raise PermanentError(
            f"report {state.id}: stored files {sorted(stored)} do not match the recorded "
            f"checksums of {sorted(recorded)}; request the report again"
        )
    reports = tables_of(session).reports
    session.execute(
        update(reports).where(reports.c.id == state.id).values(status="completed", completed_at=now)
    )
    return _replace(state, status="completed", completed_at=now)

"""In-app compliance notifications: document expiry and filing reminders (DOMAIN.md jobs 2, 3).

Each job is two statements per tenant whatever its size: a ``SELECT count(*)`` of the
candidate (subject, recipient) pairs and one ``INSERT … SELECT … ON CONFLICT (dedup_key) DO
NOTHING``. The dedup key names the subject and the recipient, so a daily re-run, a retry or
a forced run never notifies anyone twice:

- ``document_expiry:<document version id>:<user id>``, once ever per version: a new
  version (a renewed document) is a new subject;
- ``filing_due_soon:<filing id>:<user id>`` and ``filing_overdue:<filing id>:<user id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, select, true
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from gcmc_jobs.db.dialect import concat, insert_for
from gcmc_jobs.db.models import (
    OPEN_FILING_STATUSES,
    Client,
    Document,
    DocumentVersion,
    Filing,
    Notification,
    NotificationCategory,
)
from gcmc_jobs.services.recipients import Channel, Rows, assignee_or_fallback, join_recipients

__all__ = [
    "DOCUMENT_EXPIRY_WITHIN_DAYS",
    "FILING_DUE_WITHIN_DAYS",
    "NotifyResult",
    "document_expiry_candidates",
    "filing_reminder_candidates",
    "notify_document_expiry",
    "notify_filing_reminders",
]

#: A document expiring in [today, today + this] is notified.
DOCUMENT_EXPIRY_WITHIN_DAYS = 7
#: An open filing due in [today, today + this] is "due soon".
FILING_DUE_WITHIN_DAYS = 7

_COLUMNS = ["tenant_id", "user_id", "kind", "subject_type", "subject_id", "title", "body"]


@dataclass(frozen=True)
class NotifyResult:
    """What one notification job did for one tenant."""

    candidates: int
    created: int

    @property
    def duplicates(self) -> int:
        """Candidates that already had their notification (an earlier run)."""
        return self.candidates - self.created


def document_expiry_candidates(tenant_id: int, today: date) -> Rows:
    """One row per (expiring document version, recipient), in notification column order."""
    version = DocumentVersion
    query: Rows = (
        select(Document)
        .join(version, version.id == Document.latest_version_id)
        .join(Client, and_(Client.id == Document.client_id, Client.tenant_id == tenant_id))
        .where(
            Document.tenant_id == tenant_id,
            Client.is_active.is_(true()),
            version.expiry_date.between(today, today + timedelta(days=DOCUMENT_EXPIRY_WITHIN_DAYS)),
        )
    )
    query, person = join_recipients(
        query,
        tenant_id=tenant_id,
        assigned_user_id=Client.assigned_user_id,
        category=NotificationCategory.DOCUMENTS,
        channel=Channel.IN_APP,
    )
    return query.with_only_columns(
        literal(tenant_id).label("tenant_id"),
        person.id.label("user_id"),
        literal("document_expiry").label("kind"),
        literal("document_version").label("subject_type"),
        version.id.label("subject_id"),
        concat("Document expiring: ", Document.title).label("title"),
        concat(Client.name, ": ", Document.title, " expires on ", version.expiry_date, ".").label(
            "body"
        ),
        concat("document_expiry:", version.id, ":", person.id).label("dedup_key"),
    )


def filing_reminder_candidates(tenant_id: int, today: date) -> Rows:
    """One row per (open filing due soon or overdue, recipient, kind)."""
    due_soon = Filing.due_date.between(today, today + timedelta(days=FILING_DUE_WITHIN_DAYS))
    kind = case(
        (Filing.due_date < today, literal("filing_overdue")), else_=literal("filing_due_soon")
    )
    query: Rows = (
        select(Filing)
        .join(Client, and_(Client.id == Filing.client_id, Client.tenant_id == tenant_id))
        .where(
            Filing.tenant_id == tenant_id,
            Client.is_active.is_(true()),
            Filing.status.in_(OPEN_FILING_STATUSES),
            (Filing.due_date < today) | due_soon,
        )
    )
    query, person = join_recipients(
        query,
        tenant_id=tenant_id,
        assigned_user_id=assignee_or_fallback(
            tenant_id, Filing.assigned_user_id, Client.assigned_user_id
        ),
        category=NotificationCategory.FILINGS,
        channel=Channel.IN_APP,
    )
    return query.with_only_columns(
        literal(tenant_id).label("tenant_id"),
        person.id.label("user_id"),
        kind.label("kind"),
        literal("filing").label("subject_type"),
        Filing.id.label("subject_id"),
        concat(Filing.filing_type, " for ", Client.name).label("title"),
        concat(
            Client.name,
            ": ",
            Filing.filing_type,
            " for ",
            Filing.period_start,
            " to ",
            Filing.period_end,
            " is due on ",
            Filing.due_date,
            ".",
        ).label("body"),
        concat(kind, ":", Filing.id, ":", person.id).label("dedup_key"),
    )


def _insert(session: Session, candidates: Rows) -> NotifyResult:
    count = session.scalar(select(func.count()).select_from(candidates.subquery())) or 0
    statement = (
        insert_for(session)(Notification)
        .from_select([*_COLUMNS, "dedup_key"], candidates)
        .on_conflict_do_nothing(index_elements=[Notification.dedup_key])
    )
    # psycopg resets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it.
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        statement, execution_options={"preserve_rowcount": True}
    )
    return NotifyResult(candidates=int(count), created=int(result.rowcount or 0))


def notify_document_expiry(session: Session, tenant_id: int, today: date) -> NotifyResult:
    """Notify each recipient of each document whose latest version expires in
    [today, today + 7], once per (version, recipient) ever. Two statements."""
    return _insert(session, document_expiry_candidates(tenant_id, today))


def notify_filing_reminders(session: Session, tenant_id: int, today: date) -> NotifyResult:
    """Notify each recipient of each open filing due in [today, today + 7]
    (``filing_due_soon``) or past due (``filing_overdue``), once per (filing, recipient,
    kind). Two statements."""
    return _insert(session, filing_reminder_candidates(tenant_id, today))

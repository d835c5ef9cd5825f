"""In-app compliance notifications: document expiry and filing reminders (DOMAIN.md jobs 2, 3).

Each job is two statements per tenant whatever its size: a ``SELECT count(*)`` of the
candidate (subject, recipient) pairs and one ``INSERT … SELECT … ON CONFLICT (dedup_key) DO
NOTHING``. The dedup key names the subject and the recipient, so a daily re-run, a retry or
a forced run never notifies anyone twice:

- ``document_expiry:<document version id>:<user id>``, once ever per version: a new
  version (a renewed document) is a new subject;
- ``filing_due_soon:<filing id>:<user id>`` and ``filing_overdue:<filing id>:<user id>``.

The statements run on the mapped tables of the session (:func:`~gcmc_jobs.db.tables.tables_of`).
``notifications`` is the platform's table: the rows written here fill what the mapping says
the platform keeps on it (a text id when ids are text, Prisma's ``createdAt`` and
``updatedAt``), since such a platform makes them in its client, not in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, select, true
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gcmc_jobs.db.dialect import concat, insert_for
from gcmc_jobs.db.enums import OPEN_FILING_STATUSES, NotificationCategory
from gcmc_jobs.db.tables import Id, Tables, new_text_id, tables_of
from gcmc_jobs.services.recipients import Channel, Rows, assignee_or_fallback, join_recipients
from gcmc_jobs.services.tenancy import utcnow

__all__ = [
    "DOCUMENT_EXPIRY_WITHIN_DAYS",
    "FILING_DUE_WITHIN_DAYS",
    "NotifyResult",
    "document_expiry_candidates",
    "filing_reminder_candidates",
    "insert_notifications",
    "notify_document_expiry",
    "notify_filing_reminders",
]

#: A document expiring in [today, today + this] is notified.
DOCUMENT_EXPIRY_WITHIN_DAYS = 7
#: An open filing due in [today, today + this] is "due soon".
FILING_DUE_WITHIN_DAYS = 7

#: The logical columns a candidate row fills, in order.
_COLUMNS = [
    "tenant_id",
    "user_id",
    "kind",
    "subject_type",
    "subject_id",
    "title",
    "body",
    "dedup_key",
]


@dataclass(frozen=True)
class NotifyResult:
    """What one notification job did for one tenant."""

    candidates: int
    created: int

    @property
    def duplicates(self) -> int:
        """Candidates that already had their notification (an earlier run)."""
        return self.candidates - self.created


def _tenant(t: Tables, tenant_id: Id) -> ColumnElement[Any]:
    return literal(tenant_id, t.notifications.c.tenant_id.type).label("tenant_id")


def document_expiry_candidates(t: Tables, tenant_id: Id, today: date) -> Rows:
    """One row per (expiring document version, recipient) on tables ``t``, in the order of
    the notification columns ``tenant_id, user_id, kind, subject_type, subject_id, title,
    body, dedup_key``."""
    document, version, client = t.documents, t.document_versions, t.clients
    query: Rows = (
        select(document.c.id)
        .select_from(document)
        .join(version, version.c.id == document.c.latest_version_id)
        .join(client, and_(client.c.id == document.c.client_id, client.c.tenant_id == tenant_id))
        .where(
            document.c.tenant_id == tenant_id,
            client.c.is_active.is_(true()),
            version.c.expiry_date.between(
                today, today + timedelta(days=DOCUMENT_EXPIRY_WITHIN_DAYS)
            ),
        )
    )
    query, person = join_recipients(
        query,
        tables=t,
        tenant_id=tenant_id,
        assigned_user_id=client.c.assigned_user_id,
        category=NotificationCategory.DOCUMENTS,
        channel=Channel.IN_APP,
    )
    return query.with_only_columns(
        _tenant(t, tenant_id),
        person.c.id.label("user_id"),
        literal("document_expiry").label("kind"),
        literal("document_version").label("subject_type"),
        version.c.id.label("subject_id"),
        concat("Document expiring: ", document.c.title).label("title"),
        concat(
            client.c.name, ": ", document.c.title, " expires on ", version.c.expiry_date, "."
        ).label("body"),
        concat("document_expiry:", version.c.id, ":", person.c.id).label("dedup_key"),
    )


def filing_reminder_candidates(t: Tables, tenant_id: Id, today: date) -> Rows:
    """One row per (open filing due soon or overdue, recipient, kind) on tables ``t``, in
    the order of :func:`document_expiry_candidates`."""
    filing, client = t.filings, t.clients
    due_soon = filing.c.due_date.between(today, today + timedelta(days=FILING_DUE_WITHIN_DAYS))
    kind = case(
        (filing.c.due_date < today, literal("filing_overdue")), else_=literal("filing_due_soon")
    )
    query: Rows = (
        select(filing.c.id)
        .select_from(filing)
        .join(client, and_(client.c.id == filing.c.client_id, client.c.tenant_id == tenant_id))
        .where(
            filing.c.tenant_id == tenant_id,
            client.c.is_active.is_(true()),
            filing.c.status.in_(OPEN_FILING_STATUSES),
            (filing.c.due_date < today) | due_soon,
        )
    )
    query, person = join_recipients(
        query,
        tables=t,
        tenant_id=tenant_id,
        assigned_user_id=assignee_or_fallback(
            t, tenant_id, filing.c.assigned_user_id, client.c.assigned_user_id
        ),
        category=NotificationCategory.FILINGS,
        channel=Channel.IN_APP,
    )
    return query.with_only_columns(
        _tenant(t, tenant_id),
        person.c.id.label("user_id"),
        kind.label("kind"),
        literal("filing").label("subject_type"),
        filing.c.id.label("subject_id"),
        concat(filing.c.filing_type, " for ", client.c.name).label("title"),
        concat(
            client.c.name,
            ": ",
            filing.c.filing_type,
            " for ",
            filing.c.period_start,
            " to ",
            filing.c.period_end,
            " is due on ",
            filing.c.due_date,
            ".",
        ).label("body"),
        concat(kind, ":", filing.c.id, ":", person.c.id).label("dedup_key"),
    )


def insert_notifications(insert: Any, t: Tables, rows: Rows, now: Any) -> Any:
    """``INSERT INTO notifications … SELECT rows … ON CONFLICT (dedup_key) DO NOTHING``.

    ``rows`` gives the logical columns ``tenant_id, user_id, kind, subject_type, subject_id,
    title, body, dedup_key`` in that order; this adds what the platform's client would fill:
    the creation time and the mapping's bookkeeping columns (Prisma's ``updatedAt``), both
    ``now`` (a value as :meth:`~gcmc_jobs.db.tables.Tables.instant` gives it, or a SQL
    expression such as a bound parameter), and a text id (no database default on Prisma).
    ``insert`` is the dialect's ``insert`` (:func:`~gcmc_jobs.db.dialect.insert_for`)."""
    notifications = t.notifications
    stamped = ("created_at", *t.extra_columns.get("notifications", ()))
    extra: dict[str, ColumnElement[Any]] = {
        name: now if isinstance(now, ColumnElement) else literal(now, notifications.c[name].type)
        for name in stamped
    }
    if t.mapping.id_type == "text":
        extra["id"] = new_text_id()
    return (
        insert(notifications)
        .from_select(
            [notifications.c[name] for name in [*_COLUMNS, *extra]],
            rows.add_columns(*(value.label(name) for name, value in extra.items())),
            include_defaults=False,
        )
        .on_conflict_do_nothing(index_elements=[notifications.c.dedup_key])
    )


def _insert(session: Session, t: Tables, candidates: Rows, now: datetime) -> NotifyResult:
    count = session.scalar(select(func.count()).select_from(candidates.subquery())) or 0
    # naive UTC on Prisma's timestamps without time zone
    statement = insert_notifications(insert_for(session), t, candidates, t.instant(now))
    # psycopg resets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it.
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        statement, execution_options={"preserve_rowcount": True}
    )
    return NotifyResult(candidates=int(count), created=int(result.rowcount or 0))


def notify_document_expiry(
    session: Session, tenant_id: Id, today: date, *, now: datetime | None = None
) -> NotifyResult:
    """Notify each recipient of each document whose latest version expires in
    [today, today + 7], once per (version, recipient) ever. Two statements. ``now``
    (default: this instant) is the notifications' ``created_at``."""
    t = tables_of(session)
    return _insert(session, t, document_expiry_candidates(t, tenant_id, today), now or utcnow())


def notify_filing_reminders(
    session: Session, tenant_id: Id, today: date, *, now: datetime | None = None
) -> NotifyResult:
    """Notify each recipient of each open filing due in [today, today + 7]
    (``filing_due_soon``) or past due (``filing_overdue``), once per (filing, recipient,
    kind). Two statements. ``now`` as for :func:`notify_document_expiry`."""
    t = tables_of(session)
    return _insert(session, t, filing_reminder_candidates(t, tenant_id, today), now or utcnow())

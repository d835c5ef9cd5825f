"""The ``gcmc`` preset's tables as typed ORM classes, for tests, seeding and host code.

The jobs themselves run on SQLAlchemy Core tables built from the configured
:class:`~gcmc_jobs.db.mapping.SchemaMapping` (:mod:`gcmc_jobs.db.tables`); these classes are
mapped onto the ``gcmc`` preset's tables (``build_tables(GCMC)``), so there is one definition
of every table. Attribute names are the logical column names. On another mapping, use
:func:`gcmc_jobs.db.tables.tables_of` and Core statements instead.

The enums are re-exported from :mod:`gcmc_jobs.db.enums`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped

from gcmc_jobs.db.enums import (
    ALERT_ROLES,
    OPEN_FILING_STATUSES,
    ComplianceLevel,
    DocumentStatus,
    EmailStatus,
    FilingStatus,
    JobRunStatus,
    NotificationCategory,
    Role,
    SuppressionReason,
)
from gcmc_jobs.db.mapping import GCMC
from gcmc_jobs.db.tables import NAMING_CONVENTION, build_tables

__all__ = [
    "ALERT_ROLES",
    "OPEN_FILING_STATUSES",
    "Base",
    "Client",
    "ComplianceLevel",
    "ComplianceScore",
    "DeadLetter",
    "Document",
    "DocumentStatus",
    "DocumentVersion",
    "EmailLog",
    "EmailStatus",
    "EmailSuppression",
    "Filing",
    "FilingStatus",
    "JobRun",
    "JobRunStatus",
    "Notification",
    "NotificationCategory",
    "NotificationPreference",
    "OutboxMessage",
    "Role",
    "SuppressionReason",
    "Tenant",
    "TenantUser",
    "User",
]

_T = build_tables(GCMC)


class Base(DeclarativeBase):
    # The ``gcmc`` preset's metadata: ``Base.metadata.create_all`` creates every table.
    metadata = _T.metadata


# The naming convention lives with the tables; kept here for code that imported it.
assert Base.metadata.naming_convention == NAMING_CONVENTION

# -- Tenants and people ----------------------------------------------------------------------


class Tenant(Base):
    """An accounting or compliance firm. Its timezone decides its "today" and its 07:00."""

    __table__ = _T.tenants

    id: Mapped[int]
    name: Mapped[str]
    timezone: Mapped[str]
    is_active: Mapped[bool]


class User(Base):
    """A person who can sign in; belongs to tenants through ``tenant_users``."""

    __table__ = _T.users

    id: Mapped[int]
    email: Mapped[str]
    name: Mapped[str]
    is_active: Mapped[bool]


class TenantUser(Base):
    """Membership of a user in a tenant, with a role."""

    __table__ = _T.tenant_users

    tenant_id: Mapped[int]
    user_id: Mapped[int]
    role: Mapped[Role]


class Client(Base):
    """A customer of the firm; ``email`` receives client-facing mail."""

    __table__ = _T.clients

    id: Mapped[int]
    tenant_id: Mapped[int]
    name: Mapped[str]
    email: Mapped[str | None]
    assigned_user_id: Mapped[int | None]
    is_active: Mapped[bool]


# -- Documents and filings ---------------------------------------------------------------------


class Document(Base):
    """A document a client must keep valid; its current state is its latest version."""

    __table__ = _T.documents

    id: Mapped[int]
    tenant_id: Mapped[int]
    client_id: Mapped[int]
    title: Mapped[str]
    document_type: Mapped[str]
    latest_version_id: Mapped[int | None]


class DocumentVersion(Base):
    """One uploaded version of a document, reviewed and possibly expiring on a day."""

    __table__ = _T.document_versions

    id: Mapped[int]
    document_id: Mapped[int]
    status: Mapped[DocumentStatus]
    expiry_date: Mapped[date | None]


class Filing(Base):
    """A tax or regulatory filing that falls due on ``due_date``."""

    __table__ = _T.filings

    id: Mapped[int]
    tenant_id: Mapped[int]
    client_id: Mapped[int]
    filing_type: Mapped[str]
    period_start: Mapped[date]
    period_end: Mapped[date]
    due_date: Mapped[date]
    status: Mapped[FilingStatus]
    assigned_user_id: Mapped[int | None]


class ComplianceScore(Base):
    """The current compliance score of one client, rewritten by each refresh."""

    __table__ = _T.compliance_scores

    client_id: Mapped[int]
    tenant_id: Mapped[int]
    score: Mapped[int]
    level: Mapped[ComplianceLevel]
    missing_count: Mapped[int]
    expired_count: Mapped[int]
    expiring_count: Mapped[int]
    overdue_count: Mapped[int]
    computed_at: Mapped[datetime]


# -- Notifications and email -------------------------------------------------------------------


class Notification(Base):
    """An in-app notification. ``dedup_key`` names the logical notification: never twice."""

    __table__ = _T.notifications

    id: Mapped[int]
    tenant_id: Mapped[int]
    user_id: Mapped[int]
    kind: Mapped[str]
    subject_type: Mapped[str]
    subject_id: Mapped[int]
    title: Mapped[str]
    body: Mapped[str]
    dedup_key: Mapped[str]
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class NotificationPreference(Base):
    """A user's channels for one category in one tenant. A missing row means both on."""

    __table__ = _T.notification_preferences

    user_id: Mapped[int]
    tenant_id: Mapped[int]
    category: Mapped[NotificationCategory]
    in_app: Mapped[bool]
    email: Mapped[bool]


class EmailLog(Base):
    """The delivery record of one logical email, keyed by its dedup key."""

    __table__ = _T.email_log

    id: Mapped[int]
    dedup_key: Mapped[str]
    tenant_id: Mapped[int | None]
    to_address: Mapped[str]
    kind: Mapped[str]
    subject: Mapped[str]
    status: Mapped[EmailStatus]
    provider_message_id: Mapped[str | None]
    error: Mapped[str | None]
    attempts: Mapped[int]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class EmailSuppression(Base):
    """An address never to mail again (hard bounce, complaint, manual block)."""

    __table__ = _T.email_suppressions

    address: Mapped[str]
    reason: Mapped[SuppressionReason]
    created_at: Mapped[datetime]


# -- Operations -------------------------------------------------------------------------------


class DeadLetter(Base):
    """A message that failed for good, with everything needed to replay it."""

    __table__ = _T.dead_letters

    id: Mapped[int]
    message_id: Mapped[str]
    queue: Mapped[str]
    actor: Mapped[str]
    args: Mapped[list[Any]]
    kwargs: Mapped[dict[str, Any]]
    options: Mapped[dict[str, Any]]
    error_type: Mapped[str]
    error: Mapped[str]
    traceback: Mapped[str | None]
    attempts: Mapped[int]
    failed_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]
    replayed_as: Mapped[str | None]


class JobRun(Base):
    """The record that a daily job ran for a tenant on its local date, and its guard."""

    __table__ = _T.job_runs

    id: Mapped[int]
    job: Mapped[str]
    tenant_id: Mapped[int]
    local_date: Mapped[date]
    scheduled_for: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status: Mapped[JobRunStatus]
    stats: Mapped[dict[str, Any]]
    error: Mapped[str | None]


class OutboxMessage(Base):
    """A message a host wrote in its own transaction (:mod:`gcmc_jobs.outbox`), waiting for the
    relay to move it to the broker; the relay deletes the row once the broker has it. A
    package table with no foreign key, whatever the platform's id types."""

    __table__ = _T.outbox_messages

    id: Mapped[int]
    message_id: Mapped[str]
    queue_name: Mapped[str]
    actor_name: Mapped[str]
    #: The whole Dramatiq message, encoded as ``Message.encode()`` does (JSON).
    body: Mapped[str]
    #: Epoch ms before which the message must not run (a ``delay``), or None.
    not_before_ms: Mapped[int | None]
    created_at: Mapped[datetime]

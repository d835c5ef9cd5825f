"""The tables the jobs read and write (DOMAIN.md), as typed SQLAlchemy 2.0 models.

Every row except ``users`` belongs to one tenant. Where a row points at another tenant-owned
row, the foreign key includes ``tenant_id`` (``(tenant_id, client_id) → clients (tenant_id,
id)``), so the database itself refuses a document of tenant A filed under a client of
tenant B. Day columns (``expiry_date``, ``due_date``, ``local_date``) are DATEs and are
compared with the tenant's local calendar date, never with a timestamp.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
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
    "Role",
    "SuppressionReason",
    "Tenant",
    "TenantUser",
    "User",
]

#: Constraint names are stable so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT identities on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

intpk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
tenant_fk = Annotated[
    int, mapped_column(BigId, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
]
user_fk = Annotated[int, mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))]
timestamp = Annotated[datetime, mapped_column(DateTime(timezone=True))]
created = Annotated[
    datetime, mapped_column(DateTime(timezone=True), server_default=func.current_timestamp())
]


def _enum(cls: type[enum.Enum]) -> Enum:
    """A portable enum column: VARCHAR plus a CHECK, storing the member's value."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        name=cls.__name__.lower(),
    )


class Role(enum.StrEnum):
    """A member's role in a tenant. ``viewer`` never receives compliance alerts."""

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    STAFF = "staff"
    VIEWER = "viewer"


#: Roles that receive every compliance alert of their tenant (DOMAIN.md, recipients).
ALERT_ROLES = (Role.OWNER, Role.ADMIN, Role.MANAGER)


class DocumentStatus(enum.StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class FilingStatus(enum.StrEnum):
    DRAFT = "draft"
    PREPARED = "prepared"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


#: A filing is open while it is still being worked on.
OPEN_FILING_STATUSES = (FilingStatus.DRAFT, FilingStatus.PREPARED)


class ComplianceLevel(enum.StrEnum):
    """Risk level of a client: ``low`` risk when the score is ≥ 80, ``medium`` ≥ 50."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class NotificationCategory(enum.StrEnum):
    DOCUMENTS = "documents"
    FILINGS = "filings"
    TASKS = "tasks"
    SERVICE_REQUESTS = "service_requests"
    BILLING = "billing"


class EmailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"


class JobRunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: Json}


# -- Tenants and people ----------------------------------------------------------------------


class Tenant(Base):
    """An accounting or compliance firm. Its timezone decides its "today" and its 07:00."""

    __tablename__ = "tenants"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


class User(Base):
    """A person who can sign in; belongs to tenants through ``tenant_users``."""

    __tablename__ = "users"

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


class TenantUser(Base):
    """Membership of a user in a tenant, with a role."""

    __tablename__ = "tenant_users"
    __table_args__ = (Index("ix_tenant_users_tenant_role", "tenant_id", "role"),)

    tenant_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role))


class Client(Base):
    """A customer of the firm; ``email`` receives client-facing mail."""

    __tablename__ = "clients"
    __table_args__ = (
        # Target of the tenant-aware foreign keys below.
        UniqueConstraint("tenant_id", "id"),
        Index("ix_clients_tenant_active", "tenant_id", "is_active"),
    )

    id: Mapped[intpk]
    tenant_id: Mapped[tenant_fk]
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    assigned_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


# -- Documents and filings ---------------------------------------------------------------------


class Document(Base):
    """A document a client must keep valid; its current state is its latest version."""

    __tablename__ = "documents"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"], ondelete="CASCADE"
        ),
        Index("ix_documents_tenant_client", "tenant_id", "client_id"),
    )

    id: Mapped[intpk]
    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(String(300))
    document_type: Mapped[str] = mapped_column(String(100))
    # Circular with document_versions.document_id, so the constraint is added after both
    # tables exist (use_alter).
    latest_version_id: Mapped[int | None] = mapped_column(
        BigId,
        ForeignKey(
            "document_versions.id",
            use_alter=True,
            ondelete="SET NULL",
            name="fk_documents_latest_version_id_document_versions",
        ),
    )


class DocumentVersion(Base):
    """One uploaded version of a document, reviewed and possibly expiring on a day."""

    __tablename__ = "document_versions"

    id: Mapped[intpk]
    document_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[DocumentStatus] = mapped_column(_enum(DocumentStatus))
    expiry_date: Mapped[date | None] = mapped_column(Date, index=True)


class Filing(Base):
    """A tax or regulatory filing that falls due on ``due_date``."""

    __tablename__ = "filings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"], ondelete="CASCADE"
        ),
        Index("ix_filings_tenant_status_due", "tenant_id", "status", "due_date"),
        Index("ix_filings_tenant_client", "tenant_id", "client_id"),
    )

    id: Mapped[intpk]
    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(BigId)
    filing_type: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[FilingStatus] = mapped_column(_enum(FilingStatus))
    assigned_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )


class ComplianceScore(Base):
    """The current compliance score of one client, rewritten by each refresh."""

    __tablename__ = "compliance_scores"

    client_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[tenant_fk]
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[ComplianceLevel] = mapped_column(_enum(ComplianceLevel))
    missing_count: Mapped[int] = mapped_column(Integer)
    expired_count: Mapped[int] = mapped_column(Integer)
    expiring_count: Mapped[int] = mapped_column(Integer)
    overdue_count: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[timestamp]


# -- Notifications and email -------------------------------------------------------------------


class Notification(Base):
    """An in-app notification. ``dedup_key`` names the logical notification: never twice."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[intpk]
    tenant_id: Mapped[tenant_fk]
    user_id: Mapped[user_fk]
    kind: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[created]
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationPreference(Base):
    """A user's channels for one category in one tenant. A missing row means both on."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[NotificationCategory] = mapped_column(
        _enum(NotificationCategory), primary_key=True
    )
    in_app: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    email: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


class EmailLog(Base):
    """The delivery record of one logical email, keyed by its dedup key."""

    __tablename__ = "email_log"
    __table_args__ = (Index("ix_email_log_to_created", "to_address", "created_at"),)

    id: Mapped[intpk]
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    tenant_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("tenants.id", ondelete="SET NULL"), index=True
    )
    to_address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(998))
    status: Mapped[EmailStatus] = mapped_column(_enum(EmailStatus))
    provider_message_id: Mapped[str | None] = mapped_column(String(998))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[created]
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailSuppression(Base):
    """An address never to mail again (hard bounce, complaint, manual block)."""

    __tablename__ = "email_suppressions"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    created_at: Mapped[created]


# Addresses are compared case-insensitively (lower() on both sides): this index serves that
# lookup, once per email (gcmc_jobs.services.email_log.suppression_reason).
Index("ix_email_suppressions_address_lower", func.lower(EmailSuppression.address))


# -- Operations -------------------------------------------------------------------------------


class DeadLetter(Base):
    """A message that failed for good, with everything needed to replay it."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_actor_failed", "actor", "failed_at"),)

    id: Mapped[intpk]
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(200), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(Json)
    kwargs: Mapped[dict[str, Any]] = mapped_column(Json)
    options: Mapped[dict[str, Any]] = mapped_column(Json)
    error_type: Mapped[str] = mapped_column(String(200))
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[timestamp]
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replayed_as: Mapped[str | None] = mapped_column(String(64))


class JobRun(Base):
    """The record that a daily job ran for a tenant on its local date, and its guard."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "tenant_id", "local_date"),)

    id: Mapped[intpk]
    job: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[tenant_fk]
    local_date: Mapped[date] = mapped_column(Date)
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[JobRunStatus] = mapped_column(_enum(JobRunStatus))
    stats: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

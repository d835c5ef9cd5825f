"""Initial schema: every table of DOMAIN.md.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

With the platform's tables external (:mod:`gcmc_jobs.db.migrate`), only the package's own
tables, in the scope's schema, their ``tenant_id`` of the mapping's id type, with no foreign
key to the tenants.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gcmc_jobs.db.migrate import migration_scope

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tenants_fk(platform: bool, ondelete: str, table: str) -> list[sa.ForeignKeyConstraint]:
    """An own table's foreign key to the tenants: only when the package created them."""
    if not platform:
        return []
    return [
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete=ondelete,
        )
    ]


def upgrade() -> None:
    scope = migration_scope()
    schema = scope.schema
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "kwargs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error_type", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replayed_as", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("message_id", name=op.f("uq_dead_letters_message_id")),
        schema=schema,
    )
    with op.batch_alter_table("dead_letters", schema=schema) as batch_op:
        batch_op.create_index("ix_dead_letters_actor_failed", ["actor", "failed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_dead_letters_queue"), ["queue"], unique=False)

    op.create_table(
        "email_suppressions",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "hard_bounce",
                "complaint",
                "manual",
                name="suppressionreason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_email_suppressions")),
        schema=schema,
    )
    if scope.platform:
        op.create_table(
            "tenants",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
            sa.Column("is_active", sa.Boolean(), server_default="1", nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        )
        op.create_table(
            "users",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column("email", sa.String(length=320), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("is_active", sa.Boolean(), server_default="1", nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
            sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        )
        op.create_table(
            "clients",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("email", sa.String(length=320), nullable=True),
            sa.Column(
                "assigned_user_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            ),
            sa.Column("is_active", sa.Boolean(), server_default="1", nullable=False),
            sa.ForeignKeyConstraint(
                ["assigned_user_id"],
                ["users.id"],
                name=op.f("fk_clients_assigned_user_id_users"),
                ondelete="SET NULL",
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_clients_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
            sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_clients_tenant_id_id")),
        )
        with op.batch_alter_table("clients", schema=None) as batch_op:
            batch_op.create_index(
                "ix_clients_tenant_active", ["tenant_id", "is_active"], unique=False
            )
            batch_op.create_index(batch_op.f("ix_clients_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "email_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sent",
                "failed",
                "suppressed",
                name="emailstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("provider_message_id", sa.String(length=998), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        *_tenants_fk(scope.platform, "SET NULL", "email_log"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_log")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_email_log_dedup_key")),
        schema=schema,
    )
    with op.batch_alter_table("email_log", schema=schema) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_log_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_email_log_to_created", ["to_address", "created_at"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                name="jobrunstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        *_tenants_fk(scope.platform, "CASCADE", "job_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint(
            "job", "tenant_id", "local_date", name=op.f("uq_job_runs_job_tenant_id_local_date")
        ),
        schema=schema,
    )
    with op.batch_alter_table("job_runs", schema=schema) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_runs_tenant_id"), ["tenant_id"], unique=False)

    if scope.platform:
        op.create_table(
            "notification_preferences",
            sa.Column(
                "user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "category",
                sa.Enum(
                    "documents",
                    "filings",
                    "tasks",
                    "service_requests",
                    "billing",
                    name="notificationcategory",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=False,
            ),
            sa.Column("in_app", sa.Boolean(), server_default="1", nullable=False),
            sa.Column("email", sa.Boolean(), server_default="1", nullable=False),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_notification_preferences_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f("fk_notification_preferences_user_id_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(
                "user_id", "tenant_id", "category", name=op.f("pk_notification_preferences")
            ),
        )
        op.create_table(
            "notifications",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("kind", sa.String(length=64), nullable=False),
            sa.Column("subject_type", sa.String(length=64), nullable=False),
            sa.Column(
                "subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("title", sa.String(length=300), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("dedup_key", sa.String(length=255), nullable=False),
            sa.Column(
                "created_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("(CURRENT_TIMESTAMP)"),
                nullable=False,
            ),
            sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_notifications_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f("fk_notifications_user_id_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
            sa.UniqueConstraint("dedup_key", name=op.f("uq_notifications_dedup_key")),
        )
        with op.batch_alter_table("notifications", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_notifications_tenant_id"), ["tenant_id"], unique=False
            )
            batch_op.create_index(
                "ix_notifications_user_unread", ["user_id", "read_at"], unique=False
            )

        op.create_table(
            "tenant_users",
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "role",
                sa.Enum(
                    "owner",
                    "admin",
                    "manager",
                    "staff",
                    "viewer",
                    name="role",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=False,
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_tenant_users_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f("fk_tenant_users_user_id_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_tenant_users")),
        )
        with op.batch_alter_table("tenant_users", schema=None) as batch_op:
            batch_op.create_index(
                "ix_tenant_users_tenant_role", ["tenant_id", "role"], unique=False
            )
            batch_op.create_index(batch_op.f("ix_tenant_users_user_id"), ["user_id"], unique=False)

        op.create_table(
            "compliance_scores",
            sa.Column(
                "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("score", sa.Integer(), nullable=False),
            sa.Column(
                "level",
                sa.Enum(
                    "low",
                    "medium",
                    "high",
                    name="compliancelevel",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=False,
            ),
            sa.Column("missing_count", sa.Integer(), nullable=False),
            sa.Column("expired_count", sa.Integer(), nullable=False),
            sa.Column("expiring_count", sa.Integer(), nullable=False),
            sa.Column("overdue_count", sa.Integer(), nullable=False),
            sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["client_id"],
                ["clients.id"],
                name=op.f("fk_compliance_scores_client_id_clients"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_compliance_scores_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("client_id", name=op.f("pk_compliance_scores")),
        )
        with op.batch_alter_table("compliance_scores", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_compliance_scores_tenant_id"), ["tenant_id"], unique=False
            )

        op.create_table(
            "documents",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("title", sa.String(length=300), nullable=False),
            sa.Column("document_type", sa.String(length=100), nullable=False),
            sa.Column(
                "latest_version_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id", "client_id"],
                ["clients.tenant_id", "clients.id"],
                name=op.f("fk_documents_tenant_id_client_id_clients"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_documents_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        )
        with op.batch_alter_table("documents", schema=None) as batch_op:
            batch_op.create_index(
                "ix_documents_tenant_client", ["tenant_id", "client_id"], unique=False
            )

        op.create_table(
            "filings",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column(
                "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("filing_type", sa.String(length=100), nullable=False),
            sa.Column("period_start", sa.Date(), nullable=False),
            sa.Column("period_end", sa.Date(), nullable=False),
            sa.Column("due_date", sa.Date(), nullable=False),
            sa.Column(
                "status",
                sa.Enum(
                    "draft",
                    "prepared",
                    "submitted",
                    "accepted",
                    "rejected",
                    name="filingstatus",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=False,
            ),
            sa.Column(
                "assigned_user_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            ),
            sa.ForeignKeyConstraint(
                ["assigned_user_id"],
                ["users.id"],
                name=op.f("fk_filings_assigned_user_id_users"),
                ondelete="SET NULL",
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id", "client_id"],
                ["clients.tenant_id", "clients.id"],
                name=op.f("fk_filings_tenant_id_client_id_clients"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_filings_tenant_id_tenants"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_filings")),
        )
        with op.batch_alter_table("filings", schema=None) as batch_op:
            batch_op.create_index(
                "ix_filings_tenant_client", ["tenant_id", "client_id"], unique=False
            )
            batch_op.create_index(
                "ix_filings_tenant_status_due", ["tenant_id", "status", "due_date"], unique=False
            )

        op.create_table(
            "document_versions",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column(
                "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column(
                "status",
                sa.Enum(
                    "pending_review",
                    "approved",
                    "rejected",
                    name="documentstatus",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=False,
            ),
            sa.Column("expiry_date", sa.Date(), nullable=True),
            sa.ForeignKeyConstraint(
                ["document_id"],
                ["documents.id"],
                name=op.f("fk_document_versions_document_id_documents"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_document_versions")),
        )
        with op.batch_alter_table("document_versions", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_document_versions_document_id"), ["document_id"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_document_versions_expiry_date"), ["expiry_date"], unique=False
            )

        # documents.latest_version_id and document_versions.document_id point at each other, so
        # this constraint can only exist once both tables do (batch mode rebuilds on SQLite).
        with op.batch_alter_table("documents", schema=None) as batch_op:
            batch_op.create_foreign_key(
                "fk_documents_latest_version_id_document_versions",
                "document_versions",
                ["latest_version_id"],
                ["id"],
                ondelete="SET NULL",
            )


def downgrade() -> None:
    scope = migration_scope()
    schema = scope.schema
    if scope.platform:
        with op.batch_alter_table("documents", schema=None) as batch_op:
            batch_op.drop_constraint(
                "fk_documents_latest_version_id_document_versions", type_="foreignkey"
            )
        with op.batch_alter_table("document_versions", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_document_versions_expiry_date"))
            batch_op.drop_index(batch_op.f("ix_document_versions_document_id"))

        op.drop_table("document_versions")
        with op.batch_alter_table("filings", schema=None) as batch_op:
            batch_op.drop_index("ix_filings_tenant_status_due")
            batch_op.drop_index("ix_filings_tenant_client")

        op.drop_table("filings")
        with op.batch_alter_table("documents", schema=None) as batch_op:
            batch_op.drop_index("ix_documents_tenant_client")

        op.drop_table("documents")
        with op.batch_alter_table("compliance_scores", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_compliance_scores_tenant_id"))

        op.drop_table("compliance_scores")
        with op.batch_alter_table("tenant_users", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_tenant_users_user_id"))
            batch_op.drop_index("ix_tenant_users_tenant_role")

        op.drop_table("tenant_users")
        with op.batch_alter_table("notifications", schema=None) as batch_op:
            batch_op.drop_index("ix_notifications_user_unread")
            batch_op.drop_index(batch_op.f("ix_notifications_tenant_id"))

        op.drop_table("notifications")
        op.drop_table("notification_preferences")
    with op.batch_alter_table("job_runs", schema=schema) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_tenant_id"))

    op.drop_table("job_runs", schema=schema)
    with op.batch_alter_table("email_log", schema=schema) as batch_op:
        batch_op.drop_index("ix_email_log_to_created")
        batch_op.drop_index(batch_op.f("ix_email_log_tenant_id"))

    op.drop_table("email_log", schema=schema)
    if scope.platform:
        with op.batch_alter_table("clients", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_clients_tenant_id"))
            batch_op.drop_index("ix_clients_tenant_active")

        op.drop_table("clients")
        op.drop_table("users")
        op.drop_table("tenants")
    op.drop_table("email_suppressions", schema=schema)
    with op.batch_alter_table("dead_letters", schema=schema) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_queue"))
        batch_op.drop_index("ix_dead_letters_actor_failed")

    op.drop_table("dead_letters", schema=schema)

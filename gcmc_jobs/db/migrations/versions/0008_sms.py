"""The SMS channel: ``sms_opt_ins``, ``sms_suppressions`` and ``sms_log`` (issue 14, item 4).

Package tables (:mod:`gcmc_jobs.sms`): the platform's ``notification_preferences`` has no SMS
column and its ``users`` no phone number, so who wants which alerts by SMS, and at which
number, is kept here (one row per tenant, user and category), managed with ``gcmc-jobs sms``.
``sms_log`` is the delivery record (one row per logical SMS, like ``email_log``);
``sms_suppressions`` the numbers never to text again (STOP replies, numbers the provider
refused for good, manual blocks).

With the platform's tables external (:mod:`gcmc_jobs.db.migrate`), in the scope's schema,
tenant and user ids of the mapping's id type, and no foreign key to a platform table.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _tenants_fk(platform: bool, ondelete: str, table: str) -> list[sa.ForeignKeyConstraint]:
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


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        server_default=sa.text("(CURRENT_TIMESTAMP)"),
        nullable=False,
    )


def upgrade() -> None:
    scope = migration_scope()
    op.create_table(
        "sms_opt_ins",
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("user_id", scope.tenant_id_type(), nullable=False),
        sa.Column(
            "category",
            _enum(
                "notificationcategory",
                "documents",
                "filings",
                "tasks",
                "service_requests",
                "billing",
            ),
            nullable=False,
        ),
        sa.Column("phone", sa.String(length=16), nullable=False),
        _created_at(),
        *_tenants_fk(scope.platform, "CASCADE", "sms_opt_ins"),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "category", name=op.f("pk_sms_opt_ins")),
        schema=scope.schema,
    )
    op.create_table(
        "sms_suppressions",
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column(
            "reason",
            _enum("smssuppressionreason", "stop", "permanent_error", "manual"),
            nullable=False,
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_sms_suppressions")),
        schema=scope.schema,
    )
    op.create_table(
        "sms_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=True),
        sa.Column("to_phone", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status", _enum("smsstatus", "queued", "sent", "failed", "suppressed"), nullable=False
        ),
        sa.Column("provider_message_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _created_at(),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        *_tenants_fk(scope.platform, "SET NULL", "sms_log"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_log")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_sms_log_dedup_key")),
        schema=scope.schema,
    )
    op.create_index(
        op.f("ix_sms_log_tenant_id"), "sms_log", ["tenant_id"], unique=False, schema=scope.schema
    )
    op.create_index(
        op.f("ix_sms_log_to_created"),
        "sms_log",
        ["to_phone", "created_at"],
        unique=False,
        schema=scope.schema,
    )


def downgrade() -> None:
    schema = migration_scope().schema
    op.drop_table("sms_log", schema=schema)
    op.drop_table("sms_suppressions", schema=schema)
    op.drop_table("sms_opt_ins", schema=schema)

"""Campaigns with one-click unsubscribe: ``campaigns``, ``campaign_recipients`` and
``email_unsubscribes`` (issue 13, item 6).

Package tables. ``campaigns.tenant_id`` refers to the tenants only when the package created
them (``managed``); with the platform's tables external, in the scope's schema, its tenant
ids of the mapping's id type, and no foreign key to a platform table. The recipients and the
opt-outs refer to ``campaigns`` (the package's own) in every mode.

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("(CURRENT_TIMESTAMP)"),
        nullable=False,
    )


def upgrade() -> None:
    scope = migration_scope()
    schema = scope.schema
    campaigns_id = f"{schema}.campaigns.id" if schema else "campaigns.id"
    tenant_fk = (
        [
            sa.ForeignKeyConstraint(
                ["tenant_id"],
                ["tenants.id"],
                name=op.f("fk_campaigns_tenant_id_tenants"),
                ondelete="CASCADE",
            )
        ]
        if scope.platform
        else []
    )
    op.create_table(
        "campaigns",
        _id(),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject_template", sa.Text(), nullable=False),
        sa.Column("body_template", sa.Text(), nullable=False),
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            _enum("campaignstatus", "draft", "running", "paused", "cancelled", "finished"),
            nullable=False,
        ),
        sa.Column("rate_per_second", sa.Numeric(12, 3, asdecimal=False), nullable=False),
        sa.Column("dispatcher", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("rate_per_second > 0", name=op.f("ck_campaigns_rate_positive")),
        *tenant_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        schema=schema,
    )
    op.create_index("ix_campaigns_tenant_id", "campaigns", ["tenant_id"], schema=schema)
    op.create_table(
        "campaign_recipients",
        _id(),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            _enum(
                "campaignrecipientstatus",
                "queued",
                "sent",
                "failed",
                "suppressed",
                "unsubscribed",
            ),
            nullable=False,
        ),
        sa.Column("dispatches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            [campaigns_id],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint(
            "campaign_id", "address", name=op.f("uq_campaign_recipients_campaign_id_address")
        ),
        schema=schema,
    )
    op.create_index(
        "ix_campaign_recipients_campaign_status",
        "campaign_recipients",
        ["campaign_id", "status"],
        schema=schema,
    )
    op.create_table(
        "email_unsubscribes",
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        _now("unsubscribed_at"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            [campaigns_id],
            name=op.f("fk_email_unsubscribes_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "address", name=op.f("pk_email_unsubscribes")),
        schema=schema,
    )


def downgrade() -> None:
    schema = migration_scope().schema
    op.drop_table("email_unsubscribes", schema=schema)
    op.drop_table("campaign_recipients", schema=schema)
    op.drop_table("campaigns", schema=schema)

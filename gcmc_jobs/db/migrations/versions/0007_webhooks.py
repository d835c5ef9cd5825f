"""Outbound webhooks: ``webhook_endpoints``, ``webhook_events``, ``webhook_deliveries`` and
``webhook_attempts`` (issue 14).

The events table is an outbox: a service writes a row in the transaction of the change it
reports; the dispatcher fans each event out to one delivery per subscribed endpoint, and
every HTTP attempt of a delivery is kept. With the platform's tables external, in the
scope's schema with tenant ids of the mapping's type and no foreign key to the tenants.

Revision ID: 0007
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gcmc_jobs.db.migrate import migration_scope

revision = "0007"
down_revision = "0009"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TZ = sa.DateTime(timezone=True)


def _now() -> sa.TextClause:
    return sa.text("(CURRENT_TIMESTAMP)")


def _tenants_fk(platform: bool, table: str) -> list[sa.ForeignKeyConstraint]:
    if not platform:
        return []
    return [
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="CASCADE",
        )
    ]


def upgrade() -> None:
    scope = migration_scope()
    schema = scope.schema
    prefix = f"{schema}." if schema else ""
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", _TZ, server_default=_now(), nullable=False),
        sa.Column("disabled_at", _TZ, nullable=True),
        *_tenants_fk(scope.platform, "webhook_endpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_webhook_endpoints_tenant_id"), "webhook_endpoints", ["tenant_id"], schema=schema
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=64), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", _TZ, server_default=_now(), nullable=False),
        sa.Column("fanned_out_at", _TZ, nullable=True),
        *_tenants_fk(scope.platform, "webhook_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_webhook_events_event_id")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_webhook_events_dedup_key")),
        schema=schema,
    )
    op.create_index(
        "ix_webhook_events_pending", "webhook_events", ["fanned_out_at", "id"], schema=schema
    )
    op.create_index(
        "ix_webhook_events_tenant_type_date",
        "webhook_events",
        ["tenant_id", "event_type", "local_date"],
        schema=schema,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", _BIG_ID, nullable=False),
        sa.Column("endpoint_id", _BIG_ID, nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", _TZ, nullable=True),
        sa.Column("first_attempt_at", _TZ, nullable=True),
        sa.Column("last_attempt_at", _TZ, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TZ, server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            [f"{prefix}webhook_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_webhook_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            [f"{prefix}webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "event_id", "endpoint_id", name=op.f("uq_webhook_deliveries_event_id_endpoint_id")
        ),
        schema=schema,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_endpoint_id"),
        "webhook_deliveries",
        ["endpoint_id"],
        schema=schema,
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        schema=schema,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _BIG_ID, nullable=False),
        sa.Column("attempted_at", _TZ, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            [f"{prefix}webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_webhook_attempts_delivery_id"),
        "webhook_attempts",
        ["delivery_id"],
        schema=schema,
    )


def downgrade() -> None:
    schema = migration_scope().schema
    for table in ("webhook_attempts", "webhook_deliveries", "webhook_events", "webhook_endpoints"):
        op.drop_table(table, schema=schema)

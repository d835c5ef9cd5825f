"""Compliance snapshots and monthly reports (issue 15, items 1 and 2).

- ``compliance_snapshots``: one row per tenant and local day, written by each compliance
  refresh in its own transaction (clients per level, average score, the four counts summed).
- ``reports``: one row per tenant and month, the state of the report chain and its record
  (period, files with their checksums, recipients).
- ``report_files``: the PDF and CSV a report's render step made, kept in the database so
  that the next step finds them on whichever worker runs it.

With the platform's tables external (:mod:`gcmc_jobs.db.migrate`), in the scope's schema,
their ``tenant_id`` of the mapping's id type and without a foreign key to the tenants.

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gcmc_jobs.db.migrate import migration_scope

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def _tenants_fk(platform: bool, table: str) -> list[sa.ForeignKeyConstraint]:
    """An own table's foreign key to the tenants: only when the package created them."""
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
    tz = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "compliance_snapshots",
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clients", sa.Integer(), nullable=False),
        sa.Column("low", sa.Integer(), nullable=False),
        sa.Column("medium", sa.Integer(), nullable=False),
        sa.Column("high", sa.Integer(), nullable=False),
        sa.Column("average_score", sa.Numeric(5, 2), nullable=False),
        sa.Column("missing_count", sa.Integer(), nullable=False),
        sa.Column("expired_count", sa.Integer(), nullable=False),
        sa.Column("expiring_count", sa.Integer(), nullable=False),
        sa.Column("overdue_count", sa.Integer(), nullable=False),
        sa.Column("computed_at", tz, nullable=False),
        *_tenants_fk(scope.platform, "compliance_snapshots"),
        sa.PrimaryKeyConstraint("tenant_id", "day", name=op.f("pk_compliance_snapshots")),
        schema=scope.schema,
    )
    op.create_table(
        "reports",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("data", json, nullable=False),
        sa.Column("files", json, nullable=False),
        sa.Column("recipients", json, nullable=False),
        sa.Column("requested_at", tz, nullable=False),
        sa.Column("aggregated_at", tz, nullable=True),
        sa.Column("rendered_at", tz, nullable=True),
        sa.Column("emailed_at", tz, nullable=True),
        sa.Column("completed_at", tz, nullable=True),
        *_tenants_fk(scope.platform, "reports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("tenant_id", "period", name=op.f("uq_reports_tenant_id_period")),
        schema=scope.schema,
    )
    reports = "reports" if scope.schema is None else f"{scope.schema}.reports"
    op.create_table(
        "report_files",
        sa.Column("report_id", big_id, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            [f"{reports}.id"],
            name=op.f("fk_report_files_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "name", name=op.f("pk_report_files")),
        schema=scope.schema,
    )


def downgrade() -> None:
    schema = migration_scope().schema
    op.drop_table("report_files", schema=schema)
    op.drop_table("reports", schema=schema)
    op.drop_table("compliance_snapshots", schema=schema)

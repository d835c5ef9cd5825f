"""``scheduled_tenants``: when the scheduler first saw each tenant (issue 11, item 13).

A day's run is overdue only when it was possible: the tenant existed and the package was
installed. The platform's ``tenants`` table has no creation time, so the scheduler's tick
records the instant it first finds each active tenant
(:mod:`gcmc_jobs.scheduling.seen_tenants`); that instant is never before the installation,
which needs no record of its own. No foreign key, like ``outbox_messages``.

An existing deployment keeps its history: each tenant with ``job_runs`` rows is recorded as
seen at its earliest run (its ``scheduled_for``, else ``started_at``), so an upgrade does not
hide a run missed before it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_tenants",
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_scheduled_tenants")),
    )
    op.execute(
        "INSERT INTO scheduled_tenants (tenant_id, first_seen_at) "
        "SELECT tenant_id, min(coalesce(scheduled_for, started_at)) FROM job_runs "
        "WHERE coalesce(scheduled_for, started_at) IS NOT NULL GROUP BY tenant_id"
    )


def downgrade() -> None:
    op.drop_table("scheduled_tenants")

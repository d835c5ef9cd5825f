"""``scheduled_tenants``: when the scheduler first saw each tenant (issue 11, item 13).

A day's run is overdue only when it was possible: the tenant existed and the package was
installed. The platform's ``tenants`` table has no creation time, so the scheduler's tick
records the instant it first finds each active tenant
(:mod:`gcmc_jobs.scheduling.seen_tenants`); that instant is never before the installation,
which needs no record of its own. No foreign key, like ``outbox_messages``.

An existing deployment keeps its history: each tenant with ``job_runs`` rows is recorded as
seen at its earliest run (its ``scheduled_for``, else ``started_at``), so an upgrade does not
hide a run missed before it.

With the platform's tables external (:mod:`gcmc_jobs.db.migrate`), in the scope's schema, its
``tenant_id`` of the mapping's id type.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    scope = migration_scope()
    dialect = op.get_bind().dialect
    op.create_table(
        "scheduled_tenants",
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_scheduled_tenants")),
        schema=scope.schema,
    )
    op.execute(
        f"INSERT INTO {scope.qualified('scheduled_tenants', dialect)} (tenant_id, first_seen_at) "
        "SELECT tenant_id, min(coalesce(scheduled_for, started_at)) "
        f"FROM {scope.qualified('job_runs', dialect)} "
        "WHERE coalesce(scheduled_for, started_at) IS NOT NULL GROUP BY tenant_id"
    )


def downgrade() -> None:
    op.drop_table("scheduled_tenants", schema=migration_scope().schema)

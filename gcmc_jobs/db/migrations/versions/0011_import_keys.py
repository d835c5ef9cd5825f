"""``import_keys``: the external id of each imported row (issue 15, item 3).

``gcmc-jobs import`` is idempotent on an external id column of the CSV file, and the
platform's ``clients``, ``documents`` and ``filings`` have no such column (the package never
alters the platform's tables). The map external id → platform row id is kept here, one row per
(tenant, entity, external id). No foreign key, whatever the ids (a key whose row the platform
deleted is stale: the next import of that id inserts a new row and moves the key).

With the platform's tables external (:mod:`gcmc_jobs.db.migrate`), in the scope's schema,
``tenant_id`` and ``row_id`` of the mapping's id type.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    scope = migration_scope()
    op.create_table(
        "import_keys",
        sa.Column("tenant_id", scope.tenant_id_type(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("row_id", scope.tenant_id_type(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "entity", "external_id", name=op.f("pk_import_keys")),
        schema=scope.schema,
    )


def downgrade() -> None:
    op.drop_table("import_keys", schema=migration_scope().schema)

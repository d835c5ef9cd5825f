"""An index on lower(email_suppressions.address): suppressions are matched case-insensitively.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

``gcmc_jobs.services.email_log.suppression_reason`` (every email) and the digest jobs compare
``lower(address)``; without this index each lookup scans the table (53 ms at 200,000
suppressions on the development machine, 0.04 ms with it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_email_suppressions_address_lower",
        "email_suppressions",
        [sa.text("lower(address)")],
        schema=migration_scope().schema,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_email_suppressions_address_lower",
        table_name="email_suppressions",
        schema=migration_scope().schema,
    )

"""Indexes for retention (issue 15, item 4): ``email_log.created_at`` and
``job_runs.local_date``, so each batch of :mod:`gcmc_jobs.services.retention` finds its
expired rows by index instead of scanning the table (and the dead rows earlier batches left).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = migration_scope().schema
    op.create_index("ix_email_log_created_at", "email_log", ["created_at"], schema=schema)
    op.create_index("ix_job_runs_local_date", "job_runs", ["local_date"], schema=schema)


def downgrade() -> None:
    schema = migration_scope().schema
    op.drop_index("ix_job_runs_local_date", table_name="job_runs", schema=schema)
    op.drop_index("ix_email_log_created_at", table_name="email_log", schema=schema)

"""The transactional outbox: ``outbox_messages`` (issue 12, item 5).

A package table with no foreign key, so it works next to platform tables whatever their id
types. On PostgreSQL a statement trigger sends ``NOTIFY gcmc_jobs_outbox`` when rows are
inserted: PostgreSQL delivers it at the commit of the host's transaction (never on a
rollback), and the relay, which LISTENs, wakes up at once instead of waiting for its next
poll.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION gcmc_jobs_outbox_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('gcmc_jobs_outbox', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("queue_name", sa.String(length=200), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("not_before_ms", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_messages_message_id")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(
            "CREATE TRIGGER gcmc_jobs_outbox_notify AFTER INSERT ON outbox_messages "
            "FOR EACH STATEMENT EXECUTE FUNCTION gcmc_jobs_outbox_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS gcmc_jobs_outbox_notify ON outbox_messages")
        op.execute("DROP FUNCTION IF EXISTS gcmc_jobs_outbox_notify()")
    op.drop_table("outbox_messages")

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

from gcmc_jobs.db.migrate import migration_scope

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('gcmc_jobs_outbox', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    scope = migration_scope()
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
        schema=scope.schema,
    )
    dialect = op.get_bind().dialect
    if dialect.name == "postgresql":
        # The function lives next to the table (the package's schema when it has one).
        function = scope.qualified("gcmc_jobs_outbox_notify", dialect)
        op.execute(NOTIFY_FUNCTION.format(function=function))
        op.execute(
            "CREATE TRIGGER gcmc_jobs_outbox_notify AFTER INSERT ON "
            f"{scope.qualified('outbox_messages', dialect)} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    scope = migration_scope()
    dialect = op.get_bind().dialect
    if dialect.name == "postgresql":
        table = scope.qualified("outbox_messages", dialect)
        op.execute(f"DROP TRIGGER IF EXISTS gcmc_jobs_outbox_notify ON {table}")
        function = scope.qualified("gcmc_jobs_outbox_notify", dialect)
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("outbox_messages", schema=scope.schema)

"""Bounces and suppressions (issue 13): ``email_events``, ``email_suppression_changes``, who
and what added each suppression, and the ``soft_bounce`` reason.

- ``email_events``: what providers, DSNs and the SMTP server said happened to an email after
  it was sent (delivered, bounced, complained, deferred), keyed to its ``email_log`` row when
  the event names it, unique on ``(source, event_id)`` so a redelivered webhook is recorded
  once.
- ``email_suppression_changes``: every addition to and removal from the suppression list,
  with the actor (``provider:ses``, ``dsn``, ``smtp``, ``api``, ``cli:<user>``).
- ``email_suppressions.source`` / ``event_id``: who added the row, and the event that did.
- ``email_suppressions.reason`` also takes ``soft_bounce`` (its CHECK is replaced).
- an index on ``email_log.provider_message_id``: events name an email by its Message-ID.

Own tables only, in the scope's schema, no foreign key to a platform table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gcmc_jobs.db.migrate import migration_scope

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_REASONS_BEFORE = ("hard_bounce", "complaint", "manual")
_REASONS_AFTER = (*_REASONS_BEFORE, "soft_bounce")
_CHECK = "suppressionreason"


def _reason_check(values: tuple[str, ...]) -> str:
    return "reason IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _reason_check_to(values: tuple[str, ...], schema: str | None, *, columns: bool) -> None:
    """Replace the CHECK of ``email_suppressions.reason`` (and add or drop the two columns).

    On SQLite a batch operation rebuilds the table, which would lose the expression index on
    ``lower(address)`` (0002) and warn that it cannot reflect it: the index is dropped first
    and made again after.
    """
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.drop_index("ix_email_suppressions_address_lower", "email_suppressions", schema=schema)
    with op.batch_alter_table("email_suppressions", schema=schema) as batch_op:
        if columns:
            batch_op.add_column(sa.Column("source", sa.String(length=200), nullable=True))
            batch_op.add_column(sa.Column("event_id", sa.String(length=300), nullable=True))
        batch_op.drop_constraint(op.f(f"ck_email_suppressions_{_CHECK}"), type_="check")
        batch_op.create_check_constraint(_CHECK, _reason_check(values))
        if not columns:
            batch_op.drop_column("event_id")
            batch_op.drop_column("source")
    if sqlite:
        op.create_index(
            "ix_email_suppressions_address_lower",
            "email_suppressions",
            [sa.text("lower(address)")],
            schema=schema,
        )


def upgrade() -> None:
    scope = migration_scope()
    schema = scope.schema
    log_ref = "email_log.id" if schema is None else f"{schema}.email_log.id"
    op.create_table(
        "email_events",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("email_log_id", _BIGINT, nullable=True),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "delivered",
                "bounced",
                "complained",
                "deferred",
                name="emaileventkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("permanent", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_log_id"],
            [log_ref],
            name=op.f("fk_email_events_email_log_id_email_log"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_events")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_email_events_source_event_id")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_email_events_email_log_id"), "email_events", ["email_log_id"], schema=schema
    )
    op.create_index(op.f("ix_email_events_batch_id"), "email_events", ["batch_id"], schema=schema)
    op.create_index(
        "ix_email_events_address_lower",
        "email_events",
        [sa.text("lower(address)"), "occurred_at"],
        schema=schema,
    )
    op.create_table(
        "email_suppression_changes",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_suppression_changes")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_email_suppression_changes_address"),
        "email_suppression_changes",
        ["address"],
        schema=schema,
    )
    _reason_check_to(_REASONS_AFTER, schema, columns=True)
    op.create_index(
        "ix_email_log_provider_message_id", "email_log", ["provider_message_id"], schema=schema
    )


def downgrade() -> None:
    scope = migration_scope()
    schema = scope.schema
    op.drop_index("ix_email_log_provider_message_id", table_name="email_log", schema=schema)
    op.execute(
        sa.text(
            f"DELETE FROM {scope.qualified('email_suppressions', op.get_bind().dialect)} "
            "WHERE reason = 'soft_bounce'"
        )
    )
    _reason_check_to(_REASONS_BEFORE, schema, columns=False)
    op.drop_table("email_suppression_changes", schema=schema)
    op.drop_table("email_events", schema=schema)

"""The suite's ``gcmc_db`` empties the database as the plugin's ``reset_tables`` does:
every table empty, every identity restarting at its start value (``tests.support.database``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import DocumentStatus, JobRunStatus, Role
from gcmc_jobs.db.models import Base
from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.testing import reset_tables
from tests import factories as f
from tests.support.database import TableEmptier, schema_tables
from tests.support.prisma import ReusedPrismaDatabase


def _write_a_world(engine: Engine) -> None:
    """Rows in tables that reference each other (a cycle too: documents and their
    versions), and a used identity whose table is left empty again."""
    with Session(engine) as session:
        tenant = f.tenant(session)
        owner = f.member(session, tenant, Role.OWNER)
        client = f.client(session, tenant, assigned=owner)
        f.document(session, client, status=DocumentStatus.APPROVED)
        session.commit()
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO tenants (name, timezone) VALUES ('gone', 'UTC') RETURNING id")
        )
        connection.execute(text("DELETE FROM tenants WHERE name = 'gone'"))


def _state(engine: Engine) -> tuple[dict[str, int], dict[str, int | None]]:
    """Rows per table, and the last value of every sequence of the schema (None: restarted,
    not used since), read from the catalog rather than from what the emptier knows."""
    with engine.connect() as connection:
        rows = {
            table.name: int(connection.scalar(text(f"SELECT count(*) FROM {table.name}")) or 0)
            for table in Base.metadata.sorted_tables
        }
        sequences = dict(
            connection.execute(
                text(
                    "SELECT sequencename, last_value FROM pg_sequences "
                    "WHERE schemaname = current_schema()"
                )
            ).all()
        )
    return rows, sequences


@pytest.mark.parametrize("superuser", [True, False], ids=["delete", "truncate fallback"])
def test_the_emptier_leaves_the_state_reset_tables_leaves(
    gcmc_db: Engine, table_emptier: TableEmptier, superuser: bool
) -> None:
    # Given the state the plugin's reset_tables leaves after a world was written
    _write_a_world(gcmc_db)
    reset_tables(gcmc_db)
    expected = _state(gcmc_db)
    assert set(expected[0].values()) == {0}
    assert expected[1]
    assert set(expected[1].values()) == {None}

    # When the same world is written again and the emptier empties it
    _write_a_world(gcmc_db)
    written = _state(gcmc_db)
    assert written != expected
    emptier = TableEmptier(gcmc_db)
    if not superuser:
        emptier.superuser = "off"  # as for a role that may not disable triggers
    emptier.empty()

    # Then the state is reset_tables' one, and the next tenant is number 1 again
    assert _state(gcmc_db) == expected
    with Session(gcmc_db) as session:
        assert f.tenant(session).id == 1


def _add_job_run(engine: Engine) -> int:
    """A tenant and a job run of it in the tables bound to ``engine``: the run's id."""
    t = tables_of(engine)
    with Session(engine) as session:
        tenant = f.tenant(session)
        session.commit()
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(t.job_runs)
                .values(
                    job="compliance_refresh",
                    tenant_id=tenant.id,
                    local_date=date(2026, 12, 1),
                    started_at=datetime.now(UTC),
                    status=JobRunStatus.RUNNING,
                )
                .returning(t.job_runs.c.id)
            ).scalar_one()
        )


def _used_sequences(engine: Engine, schema: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT sequencename FROM pg_sequences "
                    "WHERE schemaname = :schema AND last_value IS NOT NULL"
                ),
                {"schema": schema},
            )
        )


def test_the_reused_prisma_schema_comes_back_empty_or_new_when_its_definition_changed(
    gcmc_postgres_url: str,
) -> None:
    reused = ReusedPrismaDatabase(gcmc_postgres_url)
    try:
        # Given the reused Prisma-shaped schema, with a tenant and a job run written in it
        first = reused.get()
        _add_job_run(first.engine)
        assert _used_sequences(first.engine, first.schema)

        # When the next test gets it
        second = reused.get()

        # Then it is the same schema, every table empty, every identity restarted
        assert second.schema == first.schema
        with second.engine.connect() as connection:
            for table in schema_tables(second.engine, second.schema):
                assert connection.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
        assert _used_sequences(second.engine, second.schema) == []
        assert _add_job_run(second.engine) == 1

        # When a test changes its definition (a column added to a table)
        with second.engine.begin() as connection:
            connection.execute(text(f'ALTER TABLE "{second.schema}"."Tenant" ADD COLUMN x int'))
        third = reused.get()

        # Then the next test gets a new schema as Prisma's migration makes it, the old one gone
        assert third.schema != second.schema
        with third.engine.connect() as connection:
            assert (
                connection.scalar(text("SELECT to_regnamespace(:s)"), {"s": second.schema}) is None
            )
            columns = connection.scalars(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = 'Tenant'"
                ),
                {"s": third.schema},
            ).all()
        assert columns
        assert "x" not in columns
    finally:
        reused.close()

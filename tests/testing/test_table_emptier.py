"""The suite's ``gcmc_db`` empties the database as the plugin's ``reset_tables`` does:
every table empty, every identity restarting at its start value (``tests.support.database``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.enums import DocumentStatus, Role
from gcmc_jobs.db.models import Base
from gcmc_jobs.testing import reset_tables
from tests import factories as f
from tests.support.database import TableEmptier


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

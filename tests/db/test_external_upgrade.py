"""``gcmc-jobs db upgrade`` with the platform's tables external: only the package's tables,
in the mapping's package schema; no platform table touched."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.mapping import OWN_TABLES
from gcmc_jobs.db.migrate import MigrationScope, alembic_config, scope_of, upgrade
from gcmc_jobs.db.tables import Tables, build_tables
from gcmc_jobs.errors import ConfigurationError
from tests.support.external_platform import platform_ddl, prisma_platform
from tests.support.prisma import PrismaDatabase


def _environment(tmp_path: Path, url: str, tables: Tables, ownership: str) -> dict[str, str]:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(tables.mapping.model_dump_json(by_alias=True))
    return {
        "GCMC_JOBS_DATABASE_URL": url,
        "GCMC_JOBS_SCHEMA_MAPPING": str(mapping),
        "GCMC_JOBS_PLATFORM_TABLES": ownership,
        "GCMC_JOBS_LOG_LEVEL": "WARNING",
    }


def _tables_in(engine: Engine, schema: str) -> set[str]:
    return set(inspect(engine).get_table_names(schema=schema))


def test_db_upgrade_external_creates_only_the_package_tables_in_their_schema(
    gcmc_postgres_url: str, tmp_path: Path
) -> None:
    # Given a database whose schema holds the platform's Prisma-shaped tables
    package_schema = f"jobs_{uuid.uuid4().hex[:8]}"
    with prisma_platform(gcmc_postgres_url, package_schema=package_schema) as (engine, t):
        platform_schema = t.mapping.db_schema
        assert platform_schema is not None
        before = platform_ddl(engine, platform_schema)
        env = _environment(tmp_path, gcmc_postgres_url, t, "external")

        # When gcmc-jobs db upgrade runs with the platform's tables external (twice: a no-op)
        for _ in range(2):
            result = CliRunner().invoke(app, ["db", "upgrade"], env=env)
            assert result.exit_code == 0, result.output

        # Then the platform's schema is exactly as it was
        assert platform_ddl(engine, platform_schema) == before
        assert before["tables"]  # (the comparison above compared something)
        # and the package's own tables, and Alembic's version, are in the package schema
        assert _tables_in(engine, package_schema) == {*OWN_TABLES, "alembic_version"}
        inspector = inspect(engine)
        for table in ("email_log", "job_runs"):
            columns = {c["name"]: c for c in inspector.get_columns(table, schema=package_schema)}
            assert str(columns["tenant_id"]["type"]) == "TEXT"  # Prisma's ids
            assert inspector.get_foreign_keys(table, schema=package_schema) == []
        with engine.connect() as connection:
            version = connection.execute(
                text(f'SELECT version_num FROM "{package_schema}".alembic_version')
            ).scalar_one()
            triggers = connection.execute(
                text(
                    "SELECT trigger_schema FROM information_schema.triggers "
                    "WHERE trigger_name = 'gcmc_jobs_outbox_notify' AND trigger_schema = :s"
                ),
                {"s": package_schema},
            ).all()
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        assert version == head
        assert len(triggers) == 1


def test_db_upgrade_external_in_the_platforms_own_schema_adds_only_the_package_tables(
    gcmc_postgres_url: str,
) -> None:
    # Given Prisma-shaped tables, the package's tables to go next to them (one schema)
    with prisma_platform(gcmc_postgres_url) as (engine, t):
        schema = t.mapping.db_schema
        assert schema is not None
        platform = _tables_in(engine, schema)
        before = platform_ddl(engine, schema)

        upgrade(engine)

        added = _tables_in(engine, schema) - platform
        assert added == {*OWN_TABLES, "alembic_version"}
        after = platform_ddl(engine, schema)
        # Every row describing a platform table is unchanged
        for kind, rows in after.items():
            kept = [row for row in rows if row[0] not in added]
            assert kept == before[kind], kind


def test_managed_platform_tables_need_the_gcmc_mapping(
    gcmc_postgres_url: str, tmp_path: Path
) -> None:
    with prisma_platform(gcmc_postgres_url) as (engine, t):
        schema = t.mapping.db_schema
        assert schema is not None
        before = platform_ddl(engine, schema)
        env = _environment(tmp_path, gcmc_postgres_url, t, "managed")
        result = CliRunner().invoke(app, ["db", "upgrade"], env=env)
        assert result.exit_code != 0
        assert "GCMC_JOBS_PLATFORM_TABLES=external" in result.output
        assert platform_ddl(engine, schema) == before
    with pytest.raises(ConfigurationError, match="only with the gcmc mapping"):
        scope_of(build_tables(t.mapping, managed=True))


def test_managed_gcmc_tables_keep_every_table() -> None:
    assert scope_of(build_tables()) == MigrationScope(platform=True, schema=None)


def test_a_downgrade_with_external_platform_tables_drops_only_the_package_tables(
    gcmc_postgres_url: str,
) -> None:
    with prisma_platform(gcmc_postgres_url) as (engine, t):
        schema = t.mapping.db_schema
        assert schema is not None
        before = platform_ddl(engine, schema)
        upgrade(engine)
        command.downgrade(alembic_config(engine), "base")
        after = platform_ddl(engine, schema)
        # Only Alembic's (now empty) version table is left next to the platform's
        assert _tables_in(engine, schema) - {"alembic_version"} == {
            row[0] for row in before["tables"]
        }
        for kind, rows in after.items():
            assert [row for row in rows if row[0] != "alembic_version"] == before[kind], kind


def test_on_the_tables_prismas_migration_creates_upgrade_touches_none_and_check_passes(
    prisma_migrated_db: PrismaDatabase, tmp_path: Path
) -> None:
    # Given the platform's tables as Prisma's own migration creates them
    db = prisma_migrated_db
    before = platform_ddl(db.engine, db.schema)
    env = {
        "GCMC_JOBS_DATABASE_URL": db.url,
        "GCMC_JOBS_SCHEMA_MAPPING": str(db.write_mapping(tmp_path / "mapping.json")),
        "GCMC_JOBS_PLATFORM_TABLES": "external",
        "GCMC_JOBS_LOG_LEVEL": "WARNING",
    }
    runner = CliRunner()
    # When db upgrade runs with the platform's tables external
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    # Then it added only the package's tables, left every platform table as it was
    added = {row[0] for row in platform_ddl(db.engine, db.schema)["tables"]} - {
        row[0] for row in before["tables"]
    }
    assert added == {*OWN_TABLES, "alembic_version"}
    for kind, rows in platform_ddl(db.engine, db.schema).items():
        assert [row for row in rows if row[0] not in added] == before[kind], kind
    # and db check finds the database as the mapping says
    checked = runner.invoke(app, ["db", "check"], env=env)
    assert checked.exit_code == 0, checked.output

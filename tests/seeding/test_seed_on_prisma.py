"""``gcmc-jobs seed`` on Prisma-shaped platform tables: the same world as on the gcmc preset."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from gcmc_jobs.cli import app
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import Tables, tables_of
from gcmc_jobs.seeding import seed
from gcmc_jobs.seeding.generate import COLUMNS, ID_COLUMNS, TABLES
from gcmc_jobs.seeding.load import seed_number
from tests.support.external_platform import prisma_platform

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def logical_dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every seeded row in logical form (seed numbers for ids, logical enum members)."""
    t: Tables = tables_of(engine)
    id_type = t.mapping.id_type
    dumped: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name in TABLES:
            table = t.table(name)
            rows = connection.execute(select(*(table.c[c] for c in COLUMNS[name]))).all()
            dumped[name] = sorted(
                (
                    tuple(
                        seed_number(v, id_type) if c in ID_COLUMNS and v is not None else v
                        for c, v in zip(COLUMNS[name], row, strict=True)
                    )
                    for row in rows
                ),
                key=repr,
            )
    return dumped


def test_the_same_seed_gives_the_same_world_on_prisma_tables(
    gcmc_db: Engine, gcmc_postgres_url: str
) -> None:
    with prisma_platform(gcmc_postgres_url) as (prisma, t):
        upgrade(prisma)  # the package's own tables (email_suppressions) next to Prisma's
        expected = seed(gcmc_db, tenants=2, clients_per_tenant=6, seed=7, now=NOW)
        loaded = seed(prisma, tenants=2, clients_per_tenant=6, seed=7, now=NOW)

        assert loaded.rows == expected.rows
        assert logical_dump(prisma) == logical_dump(gcmc_db)
        # stored the Prisma way: text ids, upper-case enum values, bookkeeping columns filled
        with prisma.connect() as connection:
            schema = t.mapping.db_schema
            roles = connection.execute(
                text(f'SELECT DISTINCT role::text FROM "{schema}"."TenantUser"')
            ).scalars()
            assert set(roles) == {"OWNER", "ADMIN", "MANAGER", "STAFF", "VIEWER"}
            unstamped = connection.execute(
                text(
                    f'SELECT count(*) FROM "{schema}"."Document" '
                    'WHERE "createdAt" IS NULL OR "updatedAt" IS NULL'
                )
            ).scalar_one()
            assert unstamped == 0
            tenant_ids = connection.execute(select(t.tenants.c.id)).scalars().all()
            assert all(isinstance(i, str) and i.startswith("seed-") for i in tenant_ids)


def test_seeding_prisma_tables_twice_adds_a_second_world(gcmc_postgres_url: str) -> None:
    with prisma_platform(gcmc_postgres_url) as (prisma, t):
        upgrade(prisma)
        first = seed(prisma, tenants=1, clients_per_tenant=3, seed=1, now=NOW)
        second = seed(prisma, tenants=1, clients_per_tenant=3, seed=1, now=NOW)
        with prisma.connect() as connection:
            documents = connection.scalar(select(func.count()).select_from(t.documents))
            latest = connection.scalar(
                select(func.count()).where(t.documents.c.latest_version_id.is_not(None))
            )
        assert documents == first.rows["documents"] + second.rows["documents"]
        assert latest  # documents point at their latest version once it exists


def test_the_seed_command_fills_prisma_tables_declared_external(
    gcmc_postgres_url: str, tmp_path: Path
) -> None:
    with prisma_platform(gcmc_postgres_url) as (prisma, t):
        mapping = tmp_path / "mapping.json"
        mapping.write_text(t.mapping.model_dump_json(by_alias=True))
        env = {
            "GCMC_JOBS_DATABASE_URL": gcmc_postgres_url,
            "GCMC_JOBS_SCHEMA_MAPPING": str(mapping),
            "GCMC_JOBS_PLATFORM_TABLES": "external",
            "GCMC_JOBS_LOG_LEVEL": "WARNING",
        }
        result = CliRunner().invoke(
            app, ["seed", "--tenants", "1", "--clients-per-tenant", "2"], env=env
        )
        assert result.exit_code == 0, result.output
        with prisma.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(t.clients)) == 2
            assert connection.scalar(select(func.count()).select_from(t.job_runs)) == 0

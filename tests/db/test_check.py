"""``gcmc-jobs db check`` (:mod:`gcmc_jobs.db.check`) on real PostgreSQL: the ``gcmc`` preset
after ``db upgrade``, the ``prisma`` preset on the tables Prisma's migration creates, and one
exact line per thing that differs."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from gcmc_jobs.cli import app
from gcmc_jobs.db.check import check_schema
from gcmc_jobs.db.mapping import GCMC, OWN_TABLES, PLATFORM_TABLES
from gcmc_jobs.db.tables import build_tables
from tests.support.prisma import PrismaDatabase

#: Every table the check compares: the platform's and the package's.
TABLES = len(PLATFORM_TABLES) + len(OWN_TABLES)


def _db_check(
    monkeypatch: pytest.MonkeyPatch, url: str, *options: str, mapping: str = "gcmc"
) -> Result:
    for name in list(os.environ):
        if name.startswith("GCMC_JOBS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GCMC_JOBS_DATABASE_URL", url)
    monkeypatch.setenv("GCMC_JOBS_SCHEMA_MAPPING", mapping)
    monkeypatch.setenv("GCMC_JOBS_PLATFORM_TABLES", "managed" if mapping == "gcmc" else "external")
    return CliRunner().invoke(app, ["db", "check", *options])


@pytest.fixture
def prisma(prisma_migrated_db: PrismaDatabase) -> PrismaDatabase:
    """Prisma's tables, then the package's own (``db upgrade`` with external tables)."""
    prisma_migrated_db.create_own_tables()
    return prisma_migrated_db


def _check_prisma(
    monkeypatch: pytest.MonkeyPatch, db: PrismaDatabase, tmp_path: Path, *options: str
) -> Result:
    mapping = db.write_mapping(tmp_path / "mapping.json")
    return _db_check(monkeypatch, db.url, *options, mapping=str(mapping))


def _alter(db: PrismaDatabase, *statements: str) -> None:
    with db.engine.begin() as connection:
        connection.execute(text(f'SET LOCAL search_path TO "{db.schema}"'))
        for statement in statements:
            connection.exec_driver_sql(statement)


def test_the_gcmc_preset_passes_after_db_upgrade(
    gcmc_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the session's database, migrated by `db upgrade` (the plugin's fixture)
    # When it is checked against the default mapping
    result = _db_check(monkeypatch, gcmc_postgres_url)

    # Then everything matches
    assert result.exit_code == 0, result.output
    columns = sum(len(table.columns) for table in build_tables(GCMC).metadata.tables.values())
    assert result.stdout == (
        f"ok: {TABLES} tables, {columns} columns, 5 enums match the mapping 'gcmc'\n"
    )


def test_the_prisma_preset_passes_on_the_tables_prisma_created(
    prisma: PrismaDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _check_prisma(monkeypatch, prisma, tmp_path)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {TABLES} tables, ")
    assert result.stdout.endswith(" 5 enums match the mapping 'prisma'\n")


def test_before_the_package_s_tables_exist_the_check_names_each_of_them(
    prisma_migrated_db: PrismaDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _check_prisma(monkeypatch, prisma_migrated_db, tmp_path)

    schema = prisma_migrated_db.schema
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:-1] == [
        f'table "{schema}"."{name}" ({name}): expected a table, found none' for name in OWN_TABLES
    ]


#: A change to Prisma's tables, and the line ``db check`` prints for it (``{schema}``: the
#: fixture's schema).
MISMATCHES = {
    "dropped column": (
        ['ALTER TABLE "Client" DROP COLUMN "isActive"'],
        'column "Client"."isActive" (clients.is_active): expected bool NOT NULL, '
        "found no such column",
    ),
    "renamed table": (
        ['ALTER TABLE "Filing" RENAME TO "TaxFiling"'],
        'table "{schema}"."Filing" (filings): expected a table, found none',
    ),
    "changed type": (
        ['ALTER TABLE "DocumentVersion" ALTER COLUMN "expiryDate" TYPE TIMESTAMP(3)'],
        'column "DocumentVersion"."expiryDate" (document_versions.expiry_date): '
        "expected date, found timestamp",
    ),
    # How Prisma's own migrations remove an enum value: a new type, the column cast to it.
    "missing enum value": (
        [
            'ALTER TYPE "Role" RENAME TO "Role_old"',
            "CREATE TYPE \"Role\" AS ENUM ('OWNER', 'ADMIN', 'MANAGER', 'STAFF')",
            'ALTER TABLE "TenantUser" ALTER COLUMN "role" DROP DEFAULT',
            'ALTER TABLE "TenantUser" ALTER COLUMN "role" TYPE "Role" USING ("role"::text::"Role")',
            'DROP TYPE "Role_old"',
        ],
        'enum "{schema}"."Role" (role): expected value \'VIEWER\' (viewer), '
        "found only 'OWNER', 'ADMIN', 'MANAGER', 'STAFF'",
    ),
    "a NOT NULL column the package does not write": (
        ['ALTER TABLE "Notification" ADD COLUMN "priority" INTEGER NOT NULL'],
        'column "Notification"."priority" (not mapped): expected nullable or a default (the '
        "package inserts rows into notifications), found NOT NULL without a default",
    ),
    "a key the upsert needs": (
        ['ALTER TABLE "ComplianceScore" DROP CONSTRAINT "ComplianceScore_pkey"'],
        'key of "ComplianceScore" (compliance_scores): expected a primary key or unique index '
        'on ("clientId"), found none',
    ),
    "a nullable column the package writes NULL into": (
        ['ALTER TABLE "Notification" ALTER COLUMN "readAt" SET NOT NULL'],
        'column "Notification"."readAt" (notifications.read_at): expected nullable (the '
        "package may write NULL), found NOT NULL without a default",
    ),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_each_difference_is_one_exact_line_and_exit_1(
    case: str, prisma: PrismaDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given Prisma's tables changed in one way
    statements, line = MISMATCHES[case]
    _alter(prisma, *statements)

    # When they are checked
    result = _check_prisma(monkeypatch, prisma, tmp_path)

    # Then that one line is printed, then the summary, and the exit code is 1
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[:-1] == [line.format(schema=prisma.schema)]
    assert result.stdout.splitlines()[-1].startswith(f"1 problem(s) in {TABLES} tables, ")


def test_json_lists_the_problems(
    prisma: PrismaDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _alter(prisma, 'ALTER TABLE "Client" DROP COLUMN "isActive"')

    result = _check_prisma(monkeypatch, prisma, tmp_path, "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["mapping"], report["tables"], report["enums"]) == (
        False,
        "prisma",
        TABLES,
        5,
    )
    assert report["problems"] == [
        {
            "subject": 'column "Client"."isActive" (clients.is_active)',
            "expected": "bool NOT NULL",
            "found": "no such column",
            "line": MISMATCHES["dropped column"][1],
        }
    ]


def test_a_varchar_enum_lacking_a_value_in_its_check_is_reported(gcmc_postgres_url: str) -> None:
    # Given the gcmc preset's tables (VARCHAR enums with a CHECK) in a schema of their own,
    # the CHECK of tenant_users.role without 'viewer'
    schema = f"gcmc_{uuid.uuid4().hex[:10]}"
    tables = build_tables(GCMC.model_copy(update={"db_schema": schema, "package_schema": schema}))
    engine = create_engine(gcmc_postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        tables.metadata.create_all(connection)
        connection.exec_driver_sql(
            f'ALTER TABLE "{schema}".tenant_users DROP CONSTRAINT ck_tenant_users_role'
        )
        connection.exec_driver_sql(
            f'ALTER TABLE "{schema}".tenant_users ADD CONSTRAINT ck_tenant_users_role '
            "CHECK (role IN ('owner', 'admin', 'manager', 'staff'))"
        )
    try:
        # When it is checked
        report = check_schema(engine, tables)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()

    # Then the missing value is the one problem
    assert [str(p) for p in report.problems] == [
        'column "tenant_users"."role" (tenant_users.role): expected value \'viewer\' allowed, '
        "found a CHECK allowing only 'admin', 'manager', 'owner', 'staff'"
    ]


def test_a_sqlite_file_that_does_not_exist_is_an_error_not_an_empty_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "nowhere.sqlite3"

    result = _db_check(monkeypatch, f"sqlite:///{path}")

    assert result.exit_code == 3  # a setting to fix (README, "Command line")
    assert result.stderr == (
        f"error: GCMC_JOBS_DATABASE_URL: no SQLite database at {path}: "
        "run `gcmc-jobs db upgrade` first\n"
    )
    assert not path.exists()


def test_a_mapping_without_prismas_updated_at_is_told_the_package_s_inserts_would_fail(
    prisma: PrismaDatabase,
) -> None:
    # Given the prisma preset without its bookkeeping columns (Prisma's @updatedAt has no
    # database default: the package must fill it)
    mapping = prisma.mapping.model_copy(update={"timestamps": {}})

    report = check_schema(prisma.engine, build_tables(mapping, managed=False))

    assert [str(p) for p in report.problems] == [
        f'column "{model}"."updatedAt" (not mapped): expected nullable or a default (the '
        f"package inserts rows into {table}), found NOT NULL without a default"
        for model, table in (
            ("ComplianceScore", "compliance_scores"),
            ("Notification", "notifications"),
        )
    ]

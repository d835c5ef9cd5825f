"""A Prisma-shaped database: the platform's tables as Prisma's migrations create them
(``prisma_migration.sql``, the ``migration.sql`` that ``prisma migrate`` writes for the
platform's models), in a PostgreSQL schema of their own. The ``prisma_migrated_db`` fixture
(``tests/conftest.py``) gives one."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from gcmc_jobs.db.mapping import PRISMA, SchemaMapping
from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import Tables, bind, build_tables
from tests.support.database import TableEmptier, schema_fingerprint, schema_tables

__all__ = [
    "MIGRATION",
    "PrismaDatabase",
    "ReusedPrismaDatabase",
    "SplitSchemas",
    "apply_prisma_migration",
    "prisma_mapping",
]

MIGRATION = Path(__file__).with_name("prisma_migration.sql")


@dataclass(frozen=True)
class PrismaDatabase:
    """The platform's tables as Prisma made them, and nothing of the package's yet.

    ``url`` is the database, ``schema`` the PostgreSQL schema of the tables, ``mapping`` the
    ``prisma`` preset pointed at it (the package's own tables in the same schema),
    ``tables`` its tables (``platform_tables=external``), bound to ``engine``.
    """

    url: str
    engine: Engine
    schema: str
    mapping: SchemaMapping
    tables: Tables

    def create_own_tables(self) -> None:
        """Create the package's own tables next to Prisma's: ``gcmc-jobs db upgrade`` with
        the platform's tables external (the packaged migrations, on :attr:`engine`)."""
        upgrade(self.engine)

    def write_mapping(self, path: Path) -> Path:
        """Write :attr:`mapping` as a JSON file for ``GCMC_JOBS_SCHEMA_MAPPING``."""
        path.write_text(json.dumps(self.mapping.model_dump(mode="json", by_alias=True)))
        return path


@dataclass(frozen=True)
class SplitSchemas:
    """Prisma's tables in one schema, the package's in ``package_schema`` (created by the
    packaged migrations, the platform's tables external): ``engine`` is bound to
    ``mapping``'s tables, which ``mapping_path`` holds for ``GCMC_JOBS_SCHEMA_MAPPING``."""

    url: str
    engine: Engine
    package_schema: str
    mapping: SchemaMapping
    mapping_path: Path

    def env(self) -> dict[str, str]:
        """``GCMC_JOBS_*`` variables of a process on this database (stub broker, no Redis)."""
        return {
            "GCMC_JOBS_DATABASE_URL": self.url,
            "GCMC_JOBS_SCHEMA_MAPPING": str(self.mapping_path),
            "GCMC_JOBS_PLATFORM_TABLES": "external",
            "GCMC_JOBS_BROKER_URL": "stub://",
            "GCMC_JOBS_EMAIL_URL": "memory://",
            "GCMC_JOBS_LOG_LEVEL": "WARNING",
        }


def prisma_mapping(schema: str) -> SchemaMapping:
    """The ``prisma`` preset with its tables and the package's in ``schema``."""
    return PRISMA.model_copy(update={"db_schema": schema, "package_schema": schema})


def apply_prisma_migration(engine: Engine, schema: str) -> None:
    """Create ``schema`` and run Prisma's migration in it, as ``prisma migrate deploy`` does
    (its SQL is unqualified: the schema is the connection's search path)."""
    statements = [s.strip() for s in re.split(r";\s*$", MIGRATION.read_text(), flags=re.M)]
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        for statement in statements:
            if _without_comments(statement):
                connection.exec_driver_sql(statement)


def _without_comments(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.startswith("--"))


def new_prisma_database(url: str) -> PrismaDatabase:
    """Prisma's tables in a new schema of the database at ``url``, the package's own not
    created yet; the caller drops the schema and disposes of the engine."""
    schema = f"prisma_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    apply_prisma_migration(engine, schema)
    mapping = prisma_mapping(schema)
    tables = build_tables(mapping, managed=False)
    bind(engine, tables)
    return PrismaDatabase(url, engine, schema, mapping, tables)


def drop_prisma_database(database: PrismaDatabase) -> None:
    """Drop the schema of ``database`` and dispose of its engine."""
    with database.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{database.schema}" CASCADE'))
    database.engine.dispose()


class ReusedPrismaDatabase:
    """One Prisma-shaped schema with the package's own tables, made once and handed to test
    after test emptied (:class:`TableEmptier`), instead of a new one each time: creating it
    (Prisma's migration, then the packaged migrations) costs about two seconds.

    :meth:`get` gives it with every table empty and every identity restarted, as a new one
    would be. When a test changed its definition (a column, a constraint, a trigger, an
    enum label: :func:`schema_fingerprint`), it is dropped and made again.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.database: PrismaDatabase | None = None
        self.fingerprint = ""
        self.emptier: TableEmptier | None = None

    def get(self) -> PrismaDatabase:
        database = self.database
        if database is not None and self.emptier is not None:
            if schema_fingerprint(database.engine, database.schema) == self.fingerprint:
                bind(database.engine, database.tables)
                self.emptier.empty()
                return database
            self.close()
        database = new_prisma_database(self.url)
        database.create_own_tables()
        self.database = database
        self.fingerprint = schema_fingerprint(database.engine, database.schema)
        self.emptier = TableEmptier(
            database.engine, schema_tables(database.engine, database.schema)
        )
        return database

    def close(self) -> None:
        """Drop the schema, if one was made."""
        if self.database is not None:
            drop_prisma_database(self.database)
        self.database = None
        self.emptier = None

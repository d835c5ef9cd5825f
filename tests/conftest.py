"""Shared fixtures come from gcmc_jobs.testing (the plugin host applications use too); the
suite's own harness is in tests/support.

Tests that must hold on every schema mapping take ``preset_session`` (or ``preset_db``):
parametrized over the ``gcmc`` preset (the plugin's ``gcmc_db``) and the tables Prisma's
migration creates (``prisma_db``), with ``tests.factories`` building the same world on
either.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from gcmc_jobs.db.migrate import upgrade
from gcmc_jobs.db.tables import Tables, bind, build_tables
from tests.support import RedisServer
from tests.support.database import TableEmptier
from tests.support.prisma import (
    PrismaDatabase,
    ReusedPrismaDatabase,
    SplitSchemas,
    drop_prisma_database,
    new_prisma_database,
)

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")

#: The presets ``preset_db`` and ``preset_session`` run a test on.
PRESET_NAMES = ("gcmc", "prisma")


@pytest.fixture(scope="session")
def table_emptier(_gcmc_postgres_engine: Engine) -> TableEmptier:
    """Empties the session database's tables (``tests.support.database``)."""
    return TableEmptier(_gcmc_postgres_engine)


@pytest.fixture
def gcmc_db(_gcmc_postgres_engine: Engine, table_emptier: TableEmptier) -> Engine:
    """The plugin's ``gcmc_db`` (an engine on the session's database, every table emptied
    and every identity restarted first), emptied by :class:`TableEmptier`: it deletes only
    what the previous test wrote instead of truncating every table (0.7 s a test here)."""
    table_emptier.empty()
    return _gcmc_postgres_engine


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started ``redis-server`` of the test's own (never the shared one), which it may
    stop and start again; killed at the end."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def prisma_migrated_db(gcmc_postgres_url: str) -> Iterator[PrismaDatabase]:
    """The platform's tables created the way Prisma's migrations would
    (``tests/support/prisma_migration.sql``: text ids, camelCase columns, enum types,
    Prisma's constraint names) in a PostgreSQL schema of their own, dropped afterwards; the
    package's own tables are not there until the test calls ``create_own_tables()``."""
    database = new_prisma_database(gcmc_postgres_url)
    try:
        yield database
    finally:
        drop_prisma_database(database)


@pytest.fixture(scope="session")
def _reused_prisma_db(gcmc_postgres_url: str) -> Iterator[ReusedPrismaDatabase]:
    reused = ReusedPrismaDatabase(gcmc_postgres_url)
    try:
        yield reused
    finally:
        reused.close()


@pytest.fixture
def prisma_db(_reused_prisma_db: ReusedPrismaDatabase) -> tuple[Engine, Tables]:
    """Prisma's tables (as ``prisma_migrated_db``) with the package's own tables created next
    to them (what ``gcmc-jobs db upgrade`` does when the platform's tables are external): an
    engine bound to the ``prisma`` preset's tables, and those tables. Every table is empty
    and every identity restarts; the schema is made once a session and emptied between
    tests (``ReusedPrismaDatabase``: made again if a test changed its definition)."""
    database = _reused_prisma_db.get()
    return database.engine, database.tables


@pytest.fixture
def prisma_split_db(prisma_migrated_db: PrismaDatabase, tmp_path: Path) -> Iterator[SplitSchemas]:
    """``prisma_migrated_db`` with the package's own tables in a schema of their own (a
    ``package_schema`` other than the platform's), created by ``gcmc-jobs db upgrade`` with
    the platform's tables external; that schema is dropped afterwards."""
    package_schema = f"jobs_{uuid.uuid4().hex[:8]}"
    mapping = prisma_migrated_db.mapping.model_copy(update={"package_schema": package_schema})
    engine = create_engine(prisma_migrated_db.url)
    bind(engine, build_tables(mapping, managed=False))
    path = tmp_path / "mapping.json"
    path.write_text(mapping.model_dump_json(by_alias=True))
    try:
        upgrade(engine)
        yield SplitSchemas(prisma_migrated_db.url, engine, package_schema, mapping, path)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{package_schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=PRESET_NAMES)
def preset_db(request: pytest.FixtureRequest) -> Engine:
    """An empty database on each preset in turn: the ``gcmc`` tables (``gcmc_db``), then
    Prisma-shaped ones (``prisma_db``). ``tables_of(engine)`` gives its tables."""
    if request.param == "gcmc":
        engine: Engine = request.getfixturevalue("gcmc_db")
        return engine
    prisma: tuple[Engine, Tables] = request.getfixturevalue("prisma_db")
    return prisma[0]


@pytest.fixture
def preset_session(preset_db: Engine) -> Iterator[Session]:
    """A session on ``preset_db``; what the test does not commit is rolled back."""
    with Session(preset_db, expire_on_commit=False) as session:
        yield session

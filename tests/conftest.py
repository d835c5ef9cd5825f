"""Shared fixtures come from gcmc_jobs.testing (the plugin host applications use too); the
suite's own harness is in tests/support."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

from gcmc_jobs.db.tables import bind, build_tables
from tests.support import RedisServer
from tests.support.prisma import PrismaDatabase, apply_prisma_migration, prisma_mapping

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


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
    schema = f"prisma_{uuid.uuid4().hex[:10]}"
    engine = create_engine(gcmc_postgres_url)
    apply_prisma_migration(engine, schema)
    mapping = prisma_mapping(schema)
    tables = build_tables(mapping, managed=False)
    bind(engine, tables)
    try:
        yield PrismaDatabase(gcmc_postgres_url, engine, schema, mapping, tables)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

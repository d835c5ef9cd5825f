"""Prisma-shaped platform tables in a PostgreSQL schema of their own, as Prisma's migrations
would create them (the ``prisma`` preset's DDL: text ids, camelCase columns, enum types)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from gcmc_jobs.db.mapping import PRISMA, SchemaMapping
from gcmc_jobs.db.tables import Tables, bind, build_tables

__all__ = ["platform_ddl", "prisma_platform"]


@contextmanager
def prisma_platform(
    url: str, *, package_schema: str | None = None
) -> Iterator[tuple[Engine, Tables]]:
    """A new schema holding only the platform's tables (Prisma's shape), and an engine bound
    to the ``prisma`` mapping with the platform's tables ``external``; the package's tables
    go to ``package_schema`` (default: the same schema), which nobody has created yet. Both
    schemas are dropped afterwards."""
    schema = f"prisma_{uuid.uuid4().hex[:8]}"
    mapping: SchemaMapping = PRISMA.model_copy(
        update={"db_schema": schema, "package_schema": package_schema or schema}
    )
    tables = build_tables(mapping, managed=False)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        tables.metadata.create_all(connection, tables=tables.platform)
    bind(engine, tables)
    try:
        yield engine, tables
    finally:
        with engine.begin() as connection:
            for name in {schema, package_schema or schema}:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


def platform_ddl(engine: Engine, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """What ``information_schema`` and the catalogs say of ``schema``: its tables, columns
    (with type, nullability, default), constraints, indexes and enum types, sorted."""
    queries = {
        "tables": "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = :s",
        "columns": "SELECT table_name, column_name, data_type, udt_name, is_nullable, "
        "column_default, character_maximum_length, datetime_precision "
        "FROM information_schema.columns WHERE table_schema = :s",
        "constraints": "SELECT table_name, constraint_name, constraint_type "
        "FROM information_schema.table_constraints WHERE table_schema = :s",
        "key_columns": "SELECT table_name, constraint_name, column_name, ordinal_position "
        "FROM information_schema.key_column_usage WHERE table_schema = :s",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :s",
        "enums": "SELECT t.typname, e.enumlabel, e.enumsortorder FROM pg_type t "
        "JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = :s",
        "triggers": "SELECT event_object_table, trigger_name FROM information_schema.triggers "
        "WHERE trigger_schema = :s",
    }
    with engine.connect() as connection:
        return {
            name: sorted(
                (tuple(row) for row in connection.execute(text(sql), {"s": schema})), key=repr
            )
            for name, sql in queries.items()
        }

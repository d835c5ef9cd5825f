"""Alembic environment: runs the packaged migrations on the engine the caller passes.

The caller's :class:`~gcmc_jobs.db.migrate.MigrationScope` (``config.attributes["scope"]``)
says what to create: with the platform's tables external, only the package's own tables, in
its schema, which is created here if missing and also holds ``alembic_version``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gcmc_jobs.db.migrate import migration_scope
from gcmc_jobs.db.models import Base

engine = context.config.attributes["engine"]
scope = migration_scope()

with engine.begin() as connection:
    if scope.schema is not None and connection.dialect.name == "postgresql":
        schema = connection.dialect.identifier_preparer.quote_schema(scope.schema)
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table_schema=scope.schema,
    )
    context.run_migrations()

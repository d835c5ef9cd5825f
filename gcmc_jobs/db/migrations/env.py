"""Alembic environment: runs the packaged migrations on the engine the caller passes."""

from __future__ import annotations

from alembic import context

from gcmc_jobs.db.models import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()

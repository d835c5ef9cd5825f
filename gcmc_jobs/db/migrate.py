"""Apply the Alembic migrations that ship inside the package.

Alembic is imported when a migration runs, not with this module: importing it registers its
autogenerate plugins, which log seven INFO lines, and every ``dramatiq`` and ``periodiq``
process imports :mod:`gcmc_jobs.db` (through the models and engines) without migrating.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config for the packaged migrations, bound to ``engine``."""
    # Deferred on purpose: see the module docstring.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (the newest by default)."""
    # Deferred on purpose: see the module docstring.
    from alembic import command

    command.upgrade(alembic_config(engine), revision)

"""Apply the Alembic migrations that ship inside the package.

What the migrations create depends on who owns the platform's tables
(``GCMC_JOBS_PLATFORM_TABLES``, README "The platform's database"):

- ``managed`` (the default; the demo, the tests, a standalone install): every table, the
  platform's and the package's, with the ``gcmc`` preset's names and integer ids, exactly as
  the migrations always did. Only the ``gcmc`` mapping can be managed: the migrations know no
  other platform schema (:class:`~gcmc_jobs.errors.ConfigurationError` otherwise).
- ``external`` (the platform owns and migrates its tables): only the package's own tables
  (:data:`~gcmc_jobs.db.mapping.OWN_TABLES`), in the mapping's ``package_schema`` (created
  if missing), their tenant ids typed as the mapping's ids, with no foreign key to a platform
  table; Alembic's ``alembic_version`` table goes to that schema too. No platform table is
  read, created or altered.

How a migration knows: :func:`upgrade` puts a :class:`MigrationScope` in the Alembic
config's ``attributes`` (``config.attributes["scope"]``), and each migration asks
:func:`migration_scope` what to create, where, and with which id type. A new migration must
do the same: create a platform table only when ``scope.platform`` is true, and every own table
in ``scope.schema`` (``op.create_table(..., schema=scope.schema)``).

Alembic is imported when a migration runs, not with this module: importing it registers its
autogenerate plugins, which log seven INFO lines, and every ``dramatiq`` and ``periodiq``
process imports :mod:`gcmc_jobs.db` (through the models and engines) without migrating.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Engine

from gcmc_jobs.db.mapping import GCMC, IdType
from gcmc_jobs.db.tables import Tables, tables_of
from gcmc_jobs.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MigrationScope", "alembic_config", "migration_scope", "scope_of", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class MigrationScope:
    """What the packaged migrations create (module docstring).

    Attributes:
      platform: create the platform's tables (``managed``), and the own tables' foreign keys
        to them.
      schema: the schema of the package's own tables and of ``alembic_version`` (None: the
        search path).
      id_type: the type of the own tables' tenant ids (the mapping's).
    """

    platform: bool = True
    schema: str | None = None
    id_type: IdType = "integer"

    def tenant_id_type(self) -> sa.types.TypeEngine[Any]:
        """The column type of an own table's ``tenant_id``."""
        if self.id_type == "integer":
            return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        if self.id_type == "uuid":
            return sa.Uuid(as_uuid=False)
        return sa.Text()

    def qualified(self, name: str, dialect: sa.Dialect) -> str:
        """``name`` qualified by :attr:`schema`, quoted as ``dialect`` needs, for raw SQL."""
        preparer = dialect.identifier_preparer
        quoted = preparer.quote(name)
        return quoted if self.schema is None else f"{preparer.quote_schema(self.schema)}.{quoted}"


def scope_of(tables: Tables) -> MigrationScope:
    """The scope of ``tables``' mapping and ownership; raises
    :class:`~gcmc_jobs.errors.ConfigurationError` for a managed mapping other than ``gcmc``."""
    mapping = tables.mapping
    if not tables.managed:
        return MigrationScope(
            platform=False, schema=mapping.package_schema, id_type=mapping.id_type
        )
    if mapping.model_dump(exclude={"name"}) != GCMC.model_dump(exclude={"name"}):
        raise ConfigurationError(
            f"GCMC_JOBS_PLATFORM_TABLES=managed: gcmc-jobs db upgrade creates the platform's "
            f"tables only with the gcmc mapping, not {mapping.name!r}; set "
            "GCMC_JOBS_PLATFORM_TABLES=external when the platform creates its own tables"
        )
    return MigrationScope()


def alembic_config(engine: Engine, scope: MigrationScope | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to ``engine``, creating
    ``scope`` (default: the scope of the tables bound to ``engine``)."""
    # Deferred on purpose: see the module docstring.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    config.attributes["scope"] = scope if scope is not None else scope_of(tables_of(engine))
    return config


def migration_scope() -> MigrationScope:
    """The scope of the migration running now (for the migrations themselves)."""
    # Deferred on purpose: see the module docstring.
    from alembic import context

    scope = context.config.attributes.get("scope")
    return scope if isinstance(scope, MigrationScope) else MigrationScope()


def upgrade(engine: Engine, revision: str = "head", *, scope: MigrationScope | None = None) -> None:
    """Migrate the database behind ``engine`` to ``revision`` (the newest by default).

    What is created follows ``scope``, by default the tables bound to ``engine``
    (:func:`~gcmc_jobs.db.tables.bind`; the ``gcmc`` preset, managed, for an engine nobody
    bound): every table when the platform's are managed, only the package's own otherwise.
    """
    # Deferred on purpose: see the module docstring.
    from alembic import command

    command.upgrade(alembic_config(engine, scope), revision)

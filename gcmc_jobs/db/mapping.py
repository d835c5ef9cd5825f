"""The declared mapping from the package's logical tables to a real schema, and its presets.

The jobs are written against a *logical* model (DOMAIN.md): ``clients.tenant_id``,
``document_versions.status = 'approved'``. A :class:`SchemaMapping` says what those names are
in the database the jobs run on: the schema, each table's and column's physical name, each
enum's type and values, and the type of the ids. :mod:`gcmc_jobs.db.tables` builds the
SQLAlchemy tables from it, so the SQL is the same on every mapping.

Two presets ship: :data:`GCMC` (the tables ``gcmc-jobs db upgrade`` creates, the default) and
:data:`PRISMA` (the names Prisma gives the platform's models by default: quoted PascalCase
tables such as ``"TenantUser"``, camelCase columns such as ``"tenantId"``, enum types such
as ``"Role"`` with Prisma's upper-case values, text ids from ``cuid()`` and ``createdAt`` /
``updatedAt`` columns of type ``timestamp(3)``). :func:`load_mapping` reads the
``GCMC_JOBS_SCHEMA_MAPPING`` setting: a preset name, a JSON or TOML file, or
``module:attribute``.

Who owns which table: the platform owns :data:`PLATFORM_TABLES` (``managed`` mode lets the
package create them, for the demo and the tests; ``external`` mode never touches them); the
package owns :data:`OWN_TABLES`, whose names do not change (only their tenant and user id
columns take the mapping's id type).
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gcmc_jobs.errors import ConfigurationError

__all__ = [
    "GCMC",
    "LOGICAL_COLUMNS",
    "LOGICAL_ENUMS",
    "OWN_TABLES",
    "PLATFORM_TABLES",
    "PRESETS",
    "PRISMA",
    "EnumMapping",
    "IdType",
    "SchemaMapping",
    "TableMapping",
    "load_mapping",
]

#: How ids are typed: BIGINT identities, UUIDs, or text (Prisma's ``cuid()``).
IdType = Literal["integer", "uuid", "text"]

#: The platform's tables, with their logical columns (DOMAIN.md). The platform's UI reads
#: ``compliance_scores`` and ``notifications``, which the jobs write: they belong to the
#: platform's schema too.
LOGICAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenants": ("id", "name", "timezone", "is_active"),
    "users": ("id", "email", "name", "is_active"),
    "tenant_users": ("tenant_id", "user_id", "role"),
    "clients": ("id", "tenant_id", "name", "email", "assigned_user_id", "is_active"),
    "documents": ("id", "tenant_id", "client_id", "title", "document_type", "latest_version_id"),
    "document_versions": ("id", "document_id", "status", "expiry_date"),
    "filings": (
        "id",
        "tenant_id",
        "client_id",
        "filing_type",
        "period_start",
        "period_end",
        "due_date",
        "status",
        "assigned_user_id",
    ),
    "compliance_scores": (
        "client_id",
        "tenant_id",
        "score",
        "level",
        "missing_count",
        "expired_count",
        "expiring_count",
        "overdue_count",
        "computed_at",
    ),
    "notifications": (
        "id",
        "tenant_id",
        "user_id",
        "kind",
        "subject_type",
        "subject_id",
        "title",
        "body",
        "dedup_key",
        "created_at",
        "read_at",
    ),
    "notification_preferences": ("user_id", "tenant_id", "category", "in_app", "email"),
}
PLATFORM_TABLES: tuple[str, ...] = tuple(LOGICAL_COLUMNS)
#: The package's own tables: nobody else reads them; their names never change.
OWN_TABLES: tuple[str, ...] = (
    "email_log",
    "email_suppressions",
    "dead_letters",
    "job_runs",
    "outbox_messages",
    "scheduled_tenants",
    "sms_opt_ins",
    "sms_suppressions",
    "sms_log",
    "email_events",
    "email_suppression_changes",
    "import_keys",
    "compliance_snapshots",
    "reports",
    "report_files",
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
    "webhook_attempts",
    "campaigns",
    "campaign_recipients",
    "email_unsubscribes",
)

#: The platform's enums, with their logical values.
LOGICAL_ENUMS: dict[str, tuple[str, ...]] = {
    "role": ("owner", "admin", "manager", "staff", "viewer"),
    "document_status": ("pending_review", "approved", "rejected"),
    "filing_status": ("draft", "prepared", "submitted", "accepted", "rejected"),
    "compliance_level": ("low", "medium", "high"),
    "notification_category": ("documents", "filings", "tasks", "service_requests", "billing"),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class TableMapping(BaseModel):
    """One platform table: its physical name and the physical name of each logical column
    (a column left out keeps its logical name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    columns: dict[str, str] = Field(default_factory=dict)


class EnumMapping(BaseModel):
    """One enum: a native PostgreSQL enum type (``native``, named ``type_name``) or a
    VARCHAR with a CHECK, and the physical value of each logical value (a value left out is
    stored as its logical value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type_name: str
    native: bool = False
    values: dict[str, str] = Field(default_factory=dict)


class SchemaMapping(BaseModel):
    """Where the logical model lives in a real database (module docstring).

    Attributes:
      name: a label for messages (``gcmc``, ``prisma``, ``my-platform``).
      db_schema: the PostgreSQL schema of the platform's tables (None: the search path).
        Written ``schema`` in a JSON or TOML file.
      package_schema: the schema of the package's own tables (None: the search path).
      id_type: how the platform's ids are typed; the package's own tenant and user id columns
        follow it.
      tables: the physical table and column names, per logical table.
      enums: the physical enum type and values, per logical enum (:data:`LOGICAL_ENUMS`).
      timestamps: extra bookkeeping columns the platform keeps on each of its tables,
        ``{"created_at": "createdAt", "updated_at": "updatedAt"}`` for Prisma: the package
        fills them on the rows it writes.
      timestamp_with_time_zone: ``timestamptz`` (True) or ``timestamp`` (Prisma's).
      timestamp_precision: fractional digits of timestamps (Prisma: 3; None: the default 6).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = "custom"
    db_schema: str | None = Field(default=None, alias="schema")
    package_schema: str | None = None
    id_type: IdType = "integer"
    tables: dict[str, TableMapping] = Field(default_factory=dict)
    enums: dict[str, EnumMapping] = Field(default_factory=dict)
    timestamps: dict[Literal["created_at", "updated_at"], str] = Field(default_factory=dict)
    timestamp_with_time_zone: bool = True
    timestamp_precision: int | None = Field(default=None, ge=0, le=6)

    @model_validator(mode="after")
    def _known_names(self) -> SchemaMapping:
        for table, mapped in self.tables.items():
            if table not in LOGICAL_COLUMNS:
                raise ValueError(
                    f"unknown table {table!r}; the platform's tables are "
                    f"{', '.join(PLATFORM_TABLES)}"
                )
            unknown = set(mapped.columns) - set(LOGICAL_COLUMNS[table])
            if unknown:
                raise ValueError(
                    f"unknown column(s) {', '.join(sorted(unknown))} of {table!r}; its columns "
                    f"are {', '.join(LOGICAL_COLUMNS[table])}"
                )
        for enum_name, enum_mapping in self.enums.items():
            if enum_name not in LOGICAL_ENUMS:
                raise ValueError(
                    f"unknown enum {enum_name!r}; the enums are {', '.join(LOGICAL_ENUMS)}"
                )
            unknown = set(enum_mapping.values) - set(LOGICAL_ENUMS[enum_name])
            if unknown:
                raise ValueError(
                    f"unknown value(s) {', '.join(sorted(unknown))} of enum {enum_name!r}; its "
                    f"values are {', '.join(LOGICAL_ENUMS[enum_name])}"
                )
            physical = [enum_mapping.values.get(v, v) for v in LOGICAL_ENUMS[enum_name]]
            if len(set(physical)) != len(physical):
                raise ValueError(f"enum {enum_name!r} maps two values to the same one")
        return self

    def table_name(self, table: str) -> str:
        """The physical name of logical ``table`` (own tables keep theirs)."""
        mapped = self.tables.get(table)
        return mapped.name if mapped is not None else table

    def column_name(self, table: str, column: str) -> str:
        """The physical name of logical ``table.column``."""
        mapped = self.tables.get(table)
        return mapped.columns.get(column, column) if mapped is not None else column

    def enum(self, name: str) -> EnumMapping:
        """The mapping of logical enum ``name`` (default: a VARCHAR named like the enum)."""
        return self.enums.get(name) or EnumMapping(type_name=name.replace("_", ""))

    def enum_value(self, name: str, value: str) -> str:
        """The physical value of logical ``value`` of enum ``name``."""
        return self.enum(name).values.get(value, value)


#: The tables ``gcmc-jobs db upgrade`` creates: every logical name as it is.
GCMC = SchemaMapping(name="gcmc")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


_PRISMA_MODELS = {
    "tenants": "Tenant",
    "users": "User",
    "tenant_users": "TenantUser",
    "clients": "Client",
    "documents": "Document",
    "document_versions": "DocumentVersion",
    "filings": "Filing",
    "compliance_scores": "ComplianceScore",
    "notifications": "Notification",
    "notification_preferences": "NotificationPreference",
}

#: Prisma's default names for the platform's models (the tables of
#: ``tests/support/prisma_migration.sql``, which ``gcmc-jobs db check`` accepts on this preset).
PRISMA = SchemaMapping(
    name="prisma",
    id_type="text",
    tables={
        table: TableMapping(
            name=model,
            columns={c: _camel(c) for c in LOGICAL_COLUMNS[table] if _camel(c) != c},
        )
        for table, model in _PRISMA_MODELS.items()
    },
    enums={
        name: EnumMapping(
            type_name=_pascal(name), native=True, values={v: v.upper() for v in values}
        )
        for name, values in LOGICAL_ENUMS.items()
    },
    timestamps={"created_at": "createdAt", "updated_at": "updatedAt"},
    timestamp_with_time_zone=False,
    timestamp_precision=3,
)

#: The presets by name, as ``GCMC_JOBS_SCHEMA_MAPPING`` accepts them.
PRESETS: dict[str, SchemaMapping] = {"gcmc": GCMC, "prisma": PRISMA}


def load_mapping(spec: str | SchemaMapping) -> SchemaMapping:
    """The mapping ``spec`` names: a preset (``gcmc``, ``prisma``), a ``.json`` or ``.toml``
    file, or ``module:attribute`` (a :class:`SchemaMapping` or a dict). Raises
    :class:`~gcmc_jobs.errors.ConfigurationError` naming ``GCMC_JOBS_SCHEMA_MAPPING``."""
    if isinstance(spec, SchemaMapping):
        return spec
    if spec in PRESETS:
        return PRESETS[spec]
    setting = "GCMC_JOBS_SCHEMA_MAPPING"
    data: object
    path = Path(spec)
    if path.suffix.lower() in (".json", ".toml"):
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except OSError as exc:
            raise ConfigurationError(f"{setting}: cannot read {spec!r}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigurationError(f"{setting}: {spec!r} is not valid: {exc}") from exc
    elif ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            data = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"{setting}: cannot import {spec!r}: {exc}") from exc
    else:
        raise ConfigurationError(
            f"{setting} must be one of {', '.join(PRESETS)}, a .json or .toml file, or "
            f"module:attribute; got {spec!r}"
        )
    if isinstance(data, SchemaMapping):
        return data
    try:
        return SchemaMapping.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{setting}: {spec!r} is not a valid mapping: {exc}") from exc

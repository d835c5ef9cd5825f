"""Compare a live database with the tables of a schema mapping: :func:`check_schema`.

What it reads: every mapped table's columns, keys, check constraints and the enum types
(``pg_enum`` through SQLAlchemy's inspector), a fixed number of catalogue queries whatever
the size of the schema. What it reports, one :class:`Problem` per line, each saying what
was expected and what was found:

- a mapped table, column or native enum type that is missing;
- a column whose type family differs (integer, text, uuid, timestamp, timestamptz, date,
  bool, numeric, json, enum; the length of a text or the precision of a timestamp do not
  count; with or without time zone does, on PostgreSQL);
- an enum value the database lacks (a native enum's labels, or a CHECK listing the values
  of a VARCHAR enum);
- where the package inserts rows (:data:`WRITTEN_TABLES`): a column the package leaves NULL
  or to its default that the database declares NOT NULL without a default, any other NOT
  NULL column without a default (the package's inserts would fail), and a primary key or
  unique index the package's upserts rely on.

Extra tables, columns and enum values are fine. Nullability of the tables the package only
reads is not checked.

``gcmc-jobs db check`` prints the report; ``gcmc_jobs.worker`` calls :func:`require_schema`
at boot and refuses to start on a problem (:class:`SchemaMismatch`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, UniqueConstraint, inspect
from sqlalchemy import Enum as SaEnum
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.exc import SAWarning
from sqlalchemy.types import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Time,
    TypeEngine,
    Uuid,
)

from gcmc_jobs.db.mapping import LOGICAL_ENUMS, OWN_TABLES, PLATFORM_TABLES
from gcmc_jobs.db.tables import MappedEnum, Tables
from gcmc_jobs.errors import NoDatabaseFile, SchemaMismatch

__all__ = [
    "WRITTEN_TABLES",
    "CheckReport",
    "Problem",
    "check_schema",
    "require_schema",
]

#: The logical tables the package inserts rows into: their NOT NULL columns and keys matter.
WRITTEN_TABLES: frozenset[str] = frozenset({"compliance_scores", "notifications", *OWN_TABLES})


@dataclass(frozen=True)
class Problem:
    """One difference between the mapping and the database: ``<subject>: expected
    <expected>, found <found>``."""

    subject: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.subject}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_schema` compared (counts of mapped tables, columns and enums) and
    the problems it found, in the order of the mapping."""

    mapping: str
    tables: int
    columns: int
    enums: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.problems

    def summary(self) -> str:
        """``ok: 16 tables, 109 columns, 5 enums match the mapping 'gcmc'``, or the number of
        problems."""
        counts = f"{self.tables} tables, {self.columns} columns, {self.enums} enums"
        if self.ok:
            return f"ok: {counts} match the mapping {self.mapping!r}"
        return f"{len(self.problems)} problem(s) in {counts} of the mapping {self.mapping!r}"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (``gcmc-jobs db check --json``)."""
        return {
            "ok": self.ok,
            "mapping": self.mapping,
            "tables": self.tables,
            "columns": self.columns,
            "enums": self.enums,
            "problems": [
                {"subject": p.subject, "expected": p.expected, "found": p.found, "line": str(p)}
                for p in self.problems
            ],
        }


def require_schema(bind: Engine | Connection, tables: Tables) -> CheckReport:
    """:func:`check_schema`, raising :class:`SchemaMismatch` on any problem."""
    report = check_schema(bind, tables)
    if not report.ok:
        raise SchemaMismatch(report)
    return report


def check_schema(bind: Engine | Connection, tables: Tables) -> CheckReport:
    """Compare the database behind ``bind`` with ``tables`` (module docstring).

    Raises :class:`NoDatabaseFile` for a SQLite file that does not exist (connecting would
    create it), and SQLAlchemy's ``OperationalError`` for a database it cannot reach.
    """
    if isinstance(bind, Engine):
        url = bind.url
        path = url.database or ""
        on_disk = path not in ("", ":memory:") and not path.startswith("file:")
        if url.get_backend_name() == "sqlite" and on_disk and not Path(path).exists():
            raise NoDatabaseFile(
                f"GCMC_JOBS_DATABASE_URL: no SQLite database at {path}: "
                "run `gcmc-jobs db upgrade` first"
            )
        with bind.connect() as connection:
            return check_schema(connection, tables)
    return _Checker(bind, tables).run()


# -- type families -------------------------------------------------------------------------


def _family(type_: TypeEngine[Any], dialect: str) -> str:
    """The family of a (reflected or declared) column type, as the check compares them."""
    if isinstance(type_, SaEnum) and type_.native_enum and dialect == "postgresql":
        return f'enum "{type_.name}"'
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, Integer):
        return "integer"
    if isinstance(type_, Numeric):
        return "numeric"
    if isinstance(type_, Float):  # FLOAT, REAL, DOUBLE PRECISION (SQLAlchemy 2.1: no Numeric)
        return "float"
    if isinstance(type_, DateTime):
        # SQLite keeps no time zone flag: only PostgreSQL's two types differ.
        return "timestamptz" if type_.timezone and dialect == "postgresql" else "timestamp"
    if isinstance(type_, Date):
        return "date"
    if isinstance(type_, Time):
        return "time"
    if isinstance(type_, Interval):
        return "interval"
    if isinstance(type_, Uuid):
        # Without a native UUID (SQLite), SQLAlchemy stores it as CHAR(32).
        return "uuid" if dialect == "postgresql" else "text"
    if isinstance(type_, JSON):
        return "json"
    if isinstance(type_, String):  # TEXT, VARCHAR, CHAR, and VARCHAR enums
        return "text"
    if isinstance(type_, LargeBinary):
        return "binary"
    return type(type_).__name__.lower()


def _declared(column: Column[Any], dialect: str) -> TypeEngine[Any]:
    """The type ``column`` has on ``dialect`` (its variant there, if it declares one)."""
    type_: TypeEngine[Any] = column.type
    variants: dict[str, TypeEngine[Any]] = getattr(type_, "_variant_mapping", {})
    type_ = variants.get(dialect, type_)
    if isinstance(type_, MappedEnum):
        return type_.impl_instance
    return type_


def _enum_values(type_: TypeEngine[Any]) -> tuple[str, ...]:
    """The stored values of a declared enum type (:func:`_declared`), empty for any other."""
    if isinstance(type_, SaEnum):
        return tuple(type_.enums)
    return ()


_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relies_on_default(column: Column[Any]) -> bool:
    """The package leaves ``column`` out of its inserts (a server default or an identity)."""
    return column.server_default is not None or (
        column.primary_key and column.autoincrement is True
    )


# -- the checker ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, connection: Connection, tables: Tables) -> None:
        self.tables = tables
        self.dialect = connection.dialect.name
        self.inspector: Inspector = inspect(connection)
        self.default_schema = self.inspector.default_schema_name
        self.problems: list[Problem] = []
        self.columns = 0

    def problem(self, subject: str, expected: str, found: str) -> None:
        self.problems.append(Problem(subject, expected, found))

    def run(self) -> CheckReport:
        mapped = [(name, self.tables.table(name)) for name in (*PLATFORM_TABLES, *OWN_TABLES)]
        reflected = self._reflect(table for _, table in mapped)
        enums_seen = self._check_enums([table for _, table in mapped])
        for logical, table in mapped:
            found = reflected.get((table.schema, table.name))
            if found is None:
                self.columns += len(table.columns)
                self.problem(self._table_subject(table, logical), "a table", "none")
                continue
            self._check_table(logical, table, found)
        return CheckReport(
            mapping=self.tables.mapping.name,
            tables=len(mapped),
            columns=self.columns,
            enums=enums_seen,
            problems=tuple(self.problems),
        )

    # -- reading the database: a few queries per schema, whatever its size --------------

    def _reflect(self, tables: Iterable[Table]) -> dict[tuple[str | None, str], dict[str, Any]]:
        by_schema: dict[str | None, list[str]] = {}
        for table in tables:
            by_schema.setdefault(table.schema, []).append(table.name)
        found: dict[tuple[str | None, str], dict[str, Any]] = {}
        with warnings.catch_warnings():
            # SQLite's inspector warns of each expression index (lower(address)) it skips.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
            for schema, names in by_schema.items():
                self._reflect_schema(schema, names, found)
        return found

    def _reflect_schema(
        self,
        schema: str | None,
        names: list[str],
        found: dict[tuple[str | None, str], dict[str, Any]],
    ) -> None:
        insp = self.inspector
        present = set(insp.get_table_names(schema=schema)) & set(names)
        if not present:
            return
        wanted = sorted(present)
        columns = insp.get_multi_columns(schema=schema, filter_names=wanted)
        pks = insp.get_multi_pk_constraint(schema=schema, filter_names=wanted)
        uniques = insp.get_multi_unique_constraints(schema=schema, filter_names=wanted)
        indexes = insp.get_multi_indexes(schema=schema, filter_names=wanted)
        checks = insp.get_multi_check_constraints(schema=schema, filter_names=wanted)
        for (_, name), cols in columns.items():
            key = (schema, name)
            found[key] = {
                "columns": {c["name"]: c for c in cols},
                "keys": self._keys(
                    pks.get((schema, name)),
                    uniques.get((schema, name), []),
                    indexes.get((schema, name), []),
                ),
                "checks": [c.get("sqltext") or "" for c in checks.get((schema, name), [])],
            }

    @staticmethod
    def _keys(pk: Any, uniques: list[Any], indexes: list[Any]) -> list[frozenset[str]]:
        keys = []
        if pk and pk.get("constrained_columns"):
            keys.append(frozenset(pk["constrained_columns"]))
        keys.extend(frozenset(u["column_names"]) for u in uniques)
        keys.extend(
            frozenset(i["column_names"])
            for i in indexes
            # A partial unique index (``WHERE ...``) is no key for ``ON CONFLICT (column)``.
            if i.get("unique")
            and None not in i["column_names"]
            and not (i.get("dialect_options") or {}).get("postgresql_where")
        )
        return keys

    # -- enums ---------------------------------------------------------------------------

    def _check_enums(self, tables: list[Table]) -> int:
        """Check every native enum type the tables use; returns how many enums the mapping
        has (native or not)."""
        if self.dialect != "postgresql":
            return len(LOGICAL_ENUMS)
        labels: dict[tuple[str, str], list[str]] | None = None
        done: set[tuple[str, str]] = set()
        for table in tables:
            for column in table.columns:
                type_ = column.type
                if not (isinstance(type_, MappedEnum) and type_.native):
                    continue
                schema = type_.schema or self.default_schema or "public"
                if (schema, type_.type_name) in done:
                    continue
                done.add((schema, type_.type_name))
                if labels is None:
                    labels = {
                        (e["schema"], e["name"]): list(e["labels"])
                        for e in self.inspector.get_enums(schema="*")  # type: ignore[attr-defined]
                    }
                logical_name = next(
                    (
                        n
                        for n, m in self.tables.mapping.enums.items()
                        if m.type_name == type_.type_name
                    ),
                    type_.type_name,
                )
                subject = f"enum {self._qualified(type_.schema, type_.type_name)} ({logical_name})"
                present = labels.get((schema, type_.type_name))
                if present is None:
                    self.problem(subject, "an enum type", "none")
                    continue
                for logical, physical in type_.values:
                    if physical not in present:
                        self.problem(
                            subject,
                            f"value '{physical}' ({logical})",
                            "only " + ", ".join(f"'{v}'" for v in present),
                        )
        return len(LOGICAL_ENUMS)

    # -- one table -----------------------------------------------------------------------

    def _qualified(self, schema: str | None, name: str) -> str:
        return f"{_q(schema)}.{_q(name)}" if schema else _q(name)

    def _table_subject(self, table: Table, logical: str) -> str:
        return f"table {self._qualified(table.schema, table.name)} ({logical})"

    def _check_table(self, logical: str, table: Table, found: dict[str, Any]) -> None:
        columns: dict[str, ReflectedColumn] = found["columns"]
        written = logical in WRITTEN_TABLES
        for column in table.columns:
            self.columns += 1
            subject = f"column {_q(table.name)}.{_q(column.name)} ({logical}.{column.key})"
            declared = _declared(column, self.dialect)
            expected = _family(declared, self.dialect)
            reflected = columns.get(column.name)
            if reflected is None:
                null = "" if column.nullable else " NOT NULL"
                self.problem(subject, expected + null, "no such column")
                continue
            actual = _family(reflected["type"], self.dialect)
            if actual != expected:
                self.problem(subject, expected, actual)
                continue
            if not (isinstance(column.type, MappedEnum) and column.type.native) and _enum_values(
                declared
            ):
                self._check_listed_values(subject, column, declared, found["checks"])
            if written and not reflected["nullable"] and not self._has_default(table, reflected):
                if column.nullable and not column.primary_key:
                    self.problem(
                        subject,
                        "nullable (the package may write NULL)",
                        "NOT NULL without a default",
                    )
                elif _relies_on_default(column):
                    self.problem(
                        subject,
                        "a default (the package's inserts leave it out)",
                        "NOT NULL without a default",
                    )
        if written:
            self._check_unmapped(logical, table, columns)
            self._check_keys(logical, table, found["keys"])

    def _has_default(self, table: Table, reflected: ReflectedColumn) -> bool:
        """The database fills the column when an insert leaves it out."""
        if reflected.get("default") is not None or reflected.get("identity"):
            return True
        if reflected.get("computed") or reflected.get("autoincrement") is True:
            return True
        # SQLite: a lone INTEGER PRIMARY KEY is the rowid, numbered by the database.
        pk = list(table.primary_key.columns)
        return (
            self.dialect == "sqlite"
            and len(pk) == 1
            and pk[0].name == reflected["name"]
            and _family(reflected["type"], self.dialect) == "integer"
        )

    def _check_listed_values(
        self, subject: str, column: Column[Any], declared: TypeEngine[Any], checks: list[str]
    ) -> None:
        """A VARCHAR enum: a CHECK naming the column must allow every value."""
        name = re.compile(rf"\b{re.escape(column.name)}\b")
        for sqltext in checks:
            if not name.search(sqltext):
                continue
            allowed = {v.replace("''", "'") for v in _LITERAL.findall(sqltext)}
            if not allowed:
                continue
            for value in _enum_values(declared):
                if value not in allowed:
                    self.problem(
                        subject,
                        f"value '{value}' allowed",
                        "a CHECK allowing only " + ", ".join(f"'{v}'" for v in sorted(allowed)),
                    )
            return

    def _check_unmapped(
        self, logical: str, table: Table, columns: dict[str, ReflectedColumn]
    ) -> None:
        mapped = {column.name for column in table.columns}
        for name, reflected in columns.items():
            if name in mapped or reflected["nullable"] or self._has_default(table, reflected):
                continue
            self.problem(
                f"column {_q(table.name)}.{_q(name)} (not mapped)",
                f"nullable or a default (the package inserts rows into {logical})",
                "NOT NULL without a default",
            )

    def _check_keys(self, logical: str, table: Table, keys: list[frozenset[str]]) -> None:
        """The primary key, and every unique column or constraint, the package's upserts and
        deduplication rely on."""
        wanted: list[tuple[str, ...]] = []
        pk = tuple(column.name for column in table.primary_key.columns)
        if pk:
            wanted.append(pk)
        wanted.extend((column.name,) for column in table.columns if column.unique)
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                names = tuple(c.name for c in constraint.columns)
                if names not in wanted:
                    wanted.append(names)
        for key in wanted:
            if frozenset(key) not in keys:
                self.problem(
                    f"key of {_q(table.name)} ({logical})",
                    "a primary key or unique index on (" + ", ".join(_q(n) for n in key) + ")",
                    "none",
                )

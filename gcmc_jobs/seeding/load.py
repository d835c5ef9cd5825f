"""The seed loader: writes :mod:`gcmc_jobs.seeding.generate`'s rows in one transaction, into
the tables of the engine's mapping (:func:`~gcmc_jobs.db.tables.tables_of`).

The generator speaks the logical model with integer ids; the loader writes each row with the
mapping's physical table, column and enum names, and its ids in the mapping's id type
(:func:`seed_id`: the number itself, ``seed-`` and 20 digits for text ids, the number as a
UUID for UUID ids), so the same seed gives the same world on every mapping, and seeded ids
never collide with the platform's own (a ``cuid()`` has no ``-``). It fills the platform's
bookkeeping columns (Prisma's ``createdAt`` / ``updatedAt``) with ``now``.

Rows get ids following the largest seeded id already in each table, so seeding twice adds a
second data set. On PostgreSQL the rows are loaded with ``COPY`` in one transaction. When the
package manages the platform's tables, the foreign keys and secondary indexes of the bulk
tables are dropped for the load and re-created (each foreign key validated in one pass)
before commit, as PostgreSQL's "Populating a Database" advises, and the identity sequences
are moved past the new ids. When the platform owns them (``external``), their constraints are
the platform's and stay in place: documents are loaded without their latest version, which
is set once the versions exist (one ``UPDATE … FROM`` per tenant). On SQLite, Core
``executemany`` with deferred foreign keys.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, ForeignKeyConstraint, Table, Text, cast, func, select
from sqlalchemy import text as sql
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from gcmc_jobs.db.mapping import IdType
from gcmc_jobs.db.tables import Id, MappedEnum, Tables, tables_of
from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.seeding.generate import COLUMNS, ID_COLUMNS, TABLES, Batch, Ids, generate
from gcmc_jobs.services.tenancy import utcnow

__all__ = ["BULK_TABLES", "SeedResult", "next_ids", "seed", "seed_id", "seed_number"]

#: The large tables whose foreign keys are dropped during a PostgreSQL load (managed).
BULK_TABLES = ("clients", "documents", "document_versions", "filings")
#: Text ids of seeded rows: this prefix and the number in 20 digits (fixed width, so the
#: largest is also the greatest string).
TEXT_PREFIX = "seed-"


def seed_id(number: int, id_type: IdType) -> Id:
    """Seeded id ``number`` as the mapping's ``id_type`` stores it."""
    if id_type == "integer":
        return number
    if id_type == "uuid":
        return str(uuid.UUID(int=number))
    return f"{TEXT_PREFIX}{number:020d}"


def seed_number(value: Id, id_type: IdType) -> int:
    """The number of the seeded id ``value`` (:func:`seed_id` backwards)."""
    if id_type == "integer":
        return int(value)
    if id_type == "uuid":
        return uuid.UUID(str(value)).int
    return int(str(value).removeprefix(TEXT_PREFIX))


@dataclass
class SeedResult:
    """How many rows of each table one :func:`seed` call inserted (logical names)."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    @property
    def total(self) -> int:
        """All rows inserted."""
        return sum(self.rows.values())


def next_ids(connection: Connection, tables: Tables | None = None) -> dict[str, int]:
    """The first free seed number of each seeded table with an ``id`` column (one
    ``SELECT`` per table): past the largest seeded id (on text or UUID ids, the platform's
    own ids are not numbers and are left out)."""
    t = tables or tables_of(connection)
    id_type = t.mapping.id_type
    found: dict[str, int] = {}
    for name in TABLES:
        if "id" not in COLUMNS[name]:
            continue
        column = t.table(name).c.id
        if id_type == "integer":
            largest = connection.scalar(select(func.max(column)))
        else:
            as_text = cast(column, Text)
            pattern = f"{TEXT_PREFIX}%" if id_type == "text" else "00000000-0000-0000-%"
            largest = connection.scalar(select(func.max(as_text)).where(as_text.like(pattern)))
        found[name] = (0 if largest is None else seed_number(largest, id_type)) + 1
    return found


class _Writer:
    """Turns the generator's logical rows into the mapping's physical ones."""

    def __init__(self, tables: Tables, now: datetime) -> None:
        self.t = tables
        self.now = now
        self.id_type = tables.mapping.id_type
        self.enums: dict[tuple[str, int], MappedEnum] = {}
        for name in TABLES:
            table = tables.table(name)
            for position, column in enumerate(COLUMNS[name]):
                column_type = table.c[column].type
                if isinstance(column_type, MappedEnum):
                    self.enums[(name, position)] = column_type
        #: True when every row is written as generated (integer ids, enum values stored as
        #: their logical values, no bookkeeping column: the ``gcmc`` preset): no conversion.
        self.as_generated = (
            self.id_type == "integer"
            and all(p == v for e in self.enums.values() for v, p in e.values)
            and not any(self.bookkeeping(name) for name in TABLES)
        )

    def bookkeeping(self, name: str) -> tuple[str, ...]:
        """The bookkeeping columns of ``name`` the loader fills (logical keys)."""
        return self.t.extra_columns.get(name, ())

    def columns(self, name: str) -> list[str]:
        """The physical column names of ``name``'s rows, bookkeeping columns last."""
        table = self.t.table(name)
        return [table.c[key].name for key in (*COLUMNS[name], *self.bookkeeping(name))]

    def row(self, name: str, row: Sequence[Any]) -> list[Any]:
        """``row`` of table ``name`` with physical ids and enum values, and the bookkeeping
        columns' values."""
        out = list(row)
        for position, column in enumerate(COLUMNS[name]):
            value = out[position]
            if value is None:
                continue
            if column in ID_COLUMNS:
                out[position] = seed_id(value, self.id_type)
            elif (name, position) in self.enums:
                out[position] = self.enums[(name, position)].physical(value)
        out.extend(self.now for _ in self.bookkeeping(name))
        return out

    def qualified(self, connection: Connection, name: str) -> str:
        return connection.dialect.identifier_preparer.format_table(self.t.table(name))


def _bulk_foreign_keys(tables: Tables) -> list[ForeignKeyConstraint]:
    """Foreign keys on, or pointing at, the bulk tables (dropped during a COPY load)."""
    bulk = {tables.table(name) for name in BULK_TABLES}
    found = []
    for table in tables.metadata.sorted_tables:
        for constraint in table.foreign_key_constraints:
            if table in bulk or constraint.referred_table in bulk:
                found.append(constraint)
    return found


def _prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """``batches``, generated in a thread one step ahead of the consumer.

    While the main thread waits for PostgreSQL to take a COPY (the GIL is released on the
    socket), the next tenant is being generated: the load costs max(generate, copy) rather
    than their sum.
    """
    handoff: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        handoff.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(None)
        except BaseException as exc:  # re-raised in the consumer
            handoff.put(exc)

    producer = threading.Thread(target=produce, name="gcmc-seed-generator", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


#: The temporary table of (document, latest version) pairs of an external load.
_LATEST = "gcmc_seed_latest_versions"


def _load_postgresql(connection: Connection, writer: _Writer, batches: Iterator[Batch]) -> None:
    # With the platform's constraints in place, a document's latest version is set once the
    # versions exist (the two tables point at each other).
    deferred = not writer.t.managed
    fast = writer.as_generated  # rows written as generated (the gcmc preset)
    quote = connection.dialect.identifier_preparer.quote
    documents = writer.qualified(connection, "documents")
    document = writer.t.documents.c
    latest_at = COLUMNS["documents"].index("latest_version_id")
    if deferred:
        id_sql = {"integer": "bigint", "uuid": "uuid"}.get(writer.id_type, "text")
        connection.execute(
            sql(
                f"CREATE TEMPORARY TABLE {_LATEST} (document_id {id_sql}, version_id {id_sql}) "
                "ON COMMIT DROP"
            )
        )
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for batch in _prefetched(batches):
            pairs: list[tuple[Any, Any]] = []
            for name in TABLES:
                batch_rows: Sequence[Sequence[Any]] = batch[name]
                if not batch_rows:
                    continue
                columns = ", ".join(quote(c) for c in writer.columns(name))
                target = writer.qualified(connection, name)
                if not fast:
                    batch_rows = [writer.row(name, row) for row in batch_rows]
                if deferred and name == "documents":
                    pairs = [
                        (row[0], row[latest_at]) for row in batch_rows if row[latest_at] is not None
                    ]
                    batch_rows = [
                        [*row[:latest_at], None, *row[latest_at + 1 :]] for row in batch_rows
                    ]
                with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                    for row in batch_rows:
                        copy.write_row(row)
            if pairs:
                with cursor.copy(f"COPY {_LATEST} (document_id, version_id) FROM STDIN") as copy:
                    for pair in pairs:
                        copy.write_row(pair)
                cursor.execute(
                    f"UPDATE {documents} SET {quote(document.latest_version_id.name)} = "
                    f"l.version_id FROM {_LATEST} l WHERE {documents}.{quote(document.id.name)} "
                    f"= l.document_id"
                )
                cursor.execute(f"TRUNCATE {_LATEST}")
    finally:
        cursor.close()


def _load_sqlite(connection: Connection, writer: _Writer, batches: Iterator[Batch]) -> None:
    for batch in batches:
        for name in TABLES:
            batch_rows = batch[name]
            if batch_rows:
                keys = (*COLUMNS[name], *writer.bookkeeping(name))
                table: Table = writer.t.table(name)
                connection.execute(
                    table.insert(),
                    [
                        dict(zip(keys, _logical(writer, name, row), strict=True))
                        for row in batch_rows
                    ],
                )


def _logical(writer: _Writer, name: str, row: tuple[Any, ...]) -> list[Any]:
    """``row`` with the mapping's ids; enums stay logical (their column type converts)."""
    out = [
        seed_id(value, writer.id_type) if column in ID_COLUMNS and value is not None else value
        for column, value in zip(COLUMNS[name], row, strict=True)
    ]
    out.extend(writer.now for _ in writer.bookkeeping(name))
    return out


def seed(
    engine: Engine,
    *,
    tenants: int,
    clients_per_tenant: int,
    seed: int = 0,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Insert ``tenants`` tenants of ``clients_per_tenant`` clients each, in one transaction,
    into the tables of ``engine``'s mapping (:func:`~gcmc_jobs.db.tables.tables_of`).

    ``seed`` (default 0) picks the data: the same seed, sizes and ``now`` (default: this
    instant; only its day in each tenant's timezone matters) give the same rows on an empty
    database, on every mapping (ids in the mapping's type: :func:`seed_id`). ``progress`` is
    called with the number of tenants loaded so far. Returns how many rows each table
    received. Raises :class:`~gcmc_jobs.errors.ConfigurationError` for sizes below zero or a
    database other than PostgreSQL and SQLite.
    """
    if tenants < 0 or clients_per_tenant < 0:
        raise ConfigurationError("--tenants and --clients-per-tenant must be ≥ 0")
    now = (now or utcnow()).astimezone(UTC)
    result = SeedResult()
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise ConfigurationError(f"cannot seed {dialect!r}: use PostgreSQL or SQLite")
    t = tables_of(engine)
    writer = _Writer(t, now)

    def counted(
        batches: Iterator[Batch],
    ) -> Iterator[Batch]:
        for done, batch in enumerate(batches, start=1):
            yield batch
            for name, batch_rows in batch.items():
                result.rows[name] += len(batch_rows)
            if progress is not None:
                progress(done)

    with engine.begin() as connection:
        batches = counted(
            generate(
                Ids(next_ids(connection, t)),
                tenants=tenants,
                clients_per_tenant=clients_per_tenant,
                seed=seed,
                now=now,
            )
        )
        if dialect == "postgresql":
            # The platform's own constraints (external) are not ours to drop.
            foreign_keys = _bulk_foreign_keys(t) if t.managed else []
            indexes = [
                index for name in BULK_TABLES if t.managed for index in t.table(name).indexes
            ]
            for constraint in foreign_keys:
                connection.execute(DropConstraint(constraint))
            for index in indexes:
                connection.execute(DropIndex(index))
            _load_postgresql(connection, writer, batches)
            connection.execute(sql("SET LOCAL maintenance_work_mem = '256MB'"))
            for index in indexes:
                connection.execute(CreateIndex(index))
            for constraint in foreign_keys:
                connection.execute(AddConstraint(constraint))
            if t.mapping.id_type == "integer":
                _move_sequences(connection, writer)
            for name in TABLES:
                connection.execute(sql(f"ANALYZE {writer.qualified(connection, name)}"))
        else:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            _load_sqlite(connection, writer, batches)
    return result


def _move_sequences(connection: Connection, writer: _Writer) -> None:
    """Move each seeded table's id sequence past the ids just loaded (none: left alone)."""
    for name in TABLES:
        if "id" not in COLUMNS[name]:
            continue
        target = writer.qualified(connection, name)
        column = connection.dialect.identifier_preparer.quote(writer.t.table(name).c.id.name)
        connection.execute(
            sql(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"(SELECT coalesce(max({column}), 0) + 1 FROM {target}), false)"
            ),
            {"table": target, "column": writer.t.table(name).c.id.name},
        )

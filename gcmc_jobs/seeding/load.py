"""The seed loader: writes :mod:`gcmc_jobs.seeding.generate`'s rows in one transaction.

Rows get explicit ids following the largest id already in each table, so seeding twice adds
a second data set. On PostgreSQL the rows are loaded with ``COPY`` in one transaction; the
foreign keys and secondary indexes of the bulk tables are dropped for the load and
re-created (each foreign key validated in one pass) before commit, as PostgreSQL's
"Populating a Database" advises, and the identity sequences are moved past the new ids.
On SQLite, Core ``executemany`` with deferred foreign keys.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, ForeignKeyConstraint, func, select, text
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from gcmc_jobs.db.models import Base
from gcmc_jobs.errors import ConfigurationError
from gcmc_jobs.seeding.generate import COLUMNS, TABLES, Batch, Ids, generate
from gcmc_jobs.services.tenancy import utcnow

__all__ = ["BULK_TABLES", "SeedResult", "next_ids", "seed"]

#: The large tables whose foreign keys are dropped during a PostgreSQL load.
BULK_TABLES = ("clients", "documents", "document_versions", "filings")


@dataclass
class SeedResult:
    """How many rows of each table one :func:`seed` call inserted."""

    rows: dict[str, int] = field(default_factory=lambda: {t.name: 0 for t in TABLES})

    @property
    def total(self) -> int:
        """All rows inserted."""
        return sum(self.rows.values())


def next_ids(connection: Connection) -> dict[str, int]:
    """The first free id of each seeded table with an ``id`` column."""
    found: dict[str, int] = {}
    for table in TABLES:
        if "id" in table.c:
            largest = connection.scalar(select(func.coalesce(func.max(table.c.id), 0)))
            found[table.name] = int(largest or 0) + 1
    return found


def _bulk_foreign_keys() -> list[ForeignKeyConstraint]:
    """Foreign keys on, or pointing at, the bulk tables (dropped during a COPY load)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for constraint in table.foreign_key_constraints:
            if table.name in BULK_TABLES or constraint.referred_table.name in BULK_TABLES:
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


def _load_postgresql(connection: Connection, batches: Iterator[Batch]) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for batch in _prefetched(batches):
            for table in TABLES:
                batch_rows = batch[table.name]
                if not batch_rows:
                    continue
                columns = ", ".join(COLUMNS[table])
                with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                    for row in batch_rows:
                        copy.write_row(row)
    finally:
        cursor.close()


def _load_sqlite(connection: Connection, batches: Iterator[Batch]) -> None:
    for batch in batches:
        for table in TABLES:
            names = COLUMNS[table]
            batch_rows = batch[table.name]
            if batch_rows:
                connection.execute(
                    table.insert(), [dict(zip(names, row, strict=True)) for row in batch_rows]
                )


def seed(
    engine: Engine,
    *,
    tenants: int,
    clients_per_tenant: int,
    seed: int = 0,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Insert ``tenants`` tenants of ``clients_per_tenant`` clients each, in one transaction.

    ``seed`` (default 0) picks the data: the same seed, sizes and ``now`` (default: this
    instant; only its day in each tenant's timezone matters) give the same rows on an empty
    database. ``progress`` is called with the number of tenants loaded so far. Returns how
    many rows each table received. Raises :class:`~gcmc_jobs.errors.ConfigurationError` for
    sizes below zero or a database other than PostgreSQL and SQLite.
    """
    if tenants < 0 or clients_per_tenant < 0:
        raise ConfigurationError("--tenants and --clients-per-tenant must be ≥ 0")
    now = (now or utcnow()).astimezone(UTC)
    result = SeedResult()
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise ConfigurationError(f"cannot seed {dialect!r}: use PostgreSQL or SQLite")

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
                Ids(next_ids(connection)),
                tenants=tenants,
                clients_per_tenant=clients_per_tenant,
                seed=seed,
                now=now,
            )
        )
        if dialect == "postgresql":
            foreign_keys = _bulk_foreign_keys()
            indexes = [
                index for table in TABLES if table.name in BULK_TABLES for index in table.indexes
            ]
            for constraint in foreign_keys:
                connection.execute(DropConstraint(constraint))
            for index in indexes:
                connection.execute(DropIndex(index))
            _load_postgresql(connection, batches)
            connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for index in indexes:
                connection.execute(CreateIndex(index))
            for constraint in foreign_keys:
                connection.execute(AddConstraint(constraint))
            for table in TABLES:
                if "id" in table.c:
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                        )
                    )
            for table in TABLES:
                connection.execute(text(f"ANALYZE {table.name}"))
        else:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            _load_sqlite(connection, batches)
    return result

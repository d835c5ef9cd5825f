"""Emptying the session's PostgreSQL database between tests, cheaply.

The plugin's :func:`gcmc_jobs.testing.reset_tables` runs ``TRUNCATE … RESTART IDENTITY
CASCADE`` on every table. On a server with ``fsync`` on (the shared one here, and most CI
services) that gives each of the ~30 tables, their indexes and TOAST tables new files and
syncs them: about a third of a second on a quiet 2-core machine, three quarters when it is
busy, before each of the ~1,000 tests that take ``gcmc_db``. Most tests leave most tables
empty, so :class:`TableEmptier` looks first (one query) and touches only what a test
wrote: it deletes the rows of the tables that have any and restarts the identity sequences
that were used. The end state is the plugin's: every table empty, every identity restarting
at its start value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from gcmc_jobs.db.models import Base

__all__ = ["TableEmptier", "schema_fingerprint", "schema_tables"]

#: Everything of a schema a test could change besides its rows: relations, columns (with
#: their order, types, defaults), constraints, indexes, triggers, functions, enum labels.
_FINGERPRINT = text(
    """
    SELECT md5(coalesce(string_agg(item, '|' ORDER BY item), '')) FROM (
        SELECT format('rel %s %s %s', c.relname, c.relkind, c.relrowsecurity) AS item
        FROM pg_class c WHERE c.relnamespace = to_regnamespace(:schema)
        UNION ALL
        SELECT format('col %s %s %s %s %s %s', c.relname, a.attnum, a.attname,
                      format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      pg_get_expr(d.adbin, d.adrelid))
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relnamespace = to_regnamespace(:schema)
        UNION ALL
        SELECT format('con %s %s', conname, pg_get_constraintdef(oid))
        FROM pg_constraint WHERE connamespace = to_regnamespace(:schema)
        UNION ALL
        SELECT format('idx %s', pg_get_indexdef(i.indexrelid))
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace = to_regnamespace(:schema)
        UNION ALL
        SELECT format('trg %s %s %s', t.tgname, c.relname, t.tgenabled)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = to_regnamespace(:schema)
        UNION ALL
        SELECT format('fn %s %s', p.proname, md5(p.prosrc))
        FROM pg_proc p WHERE p.pronamespace = to_regnamespace(:schema)
        UNION ALL
        SELECT format('enum %s %s %s', t.typname, e.enumsortorder, e.enumlabel)
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        WHERE t.typnamespace = to_regnamespace(:schema)
    ) AS items
    """
)


def schema_fingerprint(engine: Engine, schema: str) -> str:
    """A digest of ``schema``'s definition (not its rows): equal digests, same schema."""
    with engine.connect() as connection:
        return str(connection.scalar(_FINGERPRINT, {"schema": f'"{schema}"'}))


def schema_tables(engine: Engine, schema: str) -> list[str]:
    """Every table of ``schema``, schema-qualified and quoted."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') ORDER BY 1"
                ),
                {"schema": schema},
            )
        )


@dataclass(frozen=True)
class _Sequence:
    name: str  # quoted, schema-qualified (regclass text)
    start: int


class TableEmptier:
    """Empty every gcmc-jobs table of a PostgreSQL database (or the ``tables`` given) and
    restart their identities, as :func:`~gcmc_jobs.testing.reset_tables` does, touching
    only what is not empty already.

    It deletes with ``session_replication_role = replica`` (no foreign-key or user trigger
    fires, as under ``TRUNCATE``): every table that holds a row is emptied in the same
    transaction, so no reference is left dangling. That needs a superuser; for another role
    :meth:`empty` falls back to the plugin's ``TRUNCATE``.
    """

    def __init__(self, engine: Engine, tables: Sequence[str] | None = None) -> None:
        self.engine = engine
        self.tables = (
            list(tables)
            if tables is not None
            else [table.name for table in Base.metadata.sorted_tables]
        )
        with engine.connect() as connection:
            self.superuser = connection.scalar(text("SELECT current_setting('is_superuser')"))
            self.sequences = self._owned_sequences(connection)
        rows = ", ".join(f"EXISTS (SELECT FROM {name})" for name in self.tables)
        used = ", ".join(f"(SELECT is_called FROM {s.name})" for s in self.sequences) or "NULL"
        self._probe = text(f"SELECT ARRAY[{rows}], ARRAY[{used}]::boolean[]")

    def _owned_sequences(self, connection: Connection) -> list[_Sequence]:
        """The sequences ``RESTART IDENTITY`` restarts: those owned by the tables' columns
        (``serial`` and identity columns)."""
        rows = connection.execute(
            text(
                "SELECT s.oid::regclass::text, q.seqstart FROM pg_depend d "
                "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                "JOIN pg_sequence q ON q.seqrelid = s.oid "
                "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
                "AND d.deptype IN ('a', 'i') AND d.refobjid = ANY(:tables) "
                "ORDER BY 1"
            ),
            {"tables": [self._oid(connection, name) for name in self.tables]},
        ).all()
        return [_Sequence(name, int(start)) for name, start in rows]

    @staticmethod
    def _oid(connection: Connection, table: str) -> int:
        oid = connection.scalar(text("SELECT to_regclass(:name)::oid"), {"name": table})
        if oid is None:
            raise RuntimeError(f"table {table} does not exist: is the database migrated?")
        return int(oid)

    def empty(self) -> None:
        """Empty every table and restart every identity (a no-op when nothing was used)."""
        if self.superuser != "on":
            self._truncate()
            return
        with self.engine.begin() as connection:
            has_rows, used = connection.execute(self._probe).one()
            dirty = [name for name, full in zip(self.tables, has_rows, strict=True) if full]
            if dirty:
                connection.execute(text("SET LOCAL session_replication_role = replica"))
                for name in dirty:
                    connection.execute(text(f"DELETE FROM {name}"))
            for sequence, called in zip(self.sequences, used or [], strict=True):
                if called:
                    connection.execute(
                        text("SELECT setval(CAST(:name AS regclass), :start, false)"),
                        {"name": sequence.name, "start": sequence.start},
                    )

    def _truncate(self) -> None:
        """The plugin's way, for any role that owns the tables."""
        with self.engine.begin() as connection:
            names = ", ".join(self.tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

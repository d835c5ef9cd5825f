"""A whole batch of rows as one bound parameter: the set-based writes' source of rows.

A batch of N rows travels as one JSON array bound to ``:batch`` and is expanded by the
database (``jsonb_to_recordset`` on PostgreSQL, ``json_each`` on SQLite), so an
``INSERT … SELECT`` over it is one statement whatever N is: no statement per row, and no
``executemany`` of N parameter sets either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection

__all__ = ["ColumnType", "encode", "instant", "rows_source"]

#: The SQL type of one JSON field, as the expansion declares it.
ColumnType = Literal["text", "boolean", "timestamptz"]


def rows_source(connection: Connection, columns: Mapping[str, ColumnType], alias: str) -> str:
    """A FROM item (``… AS <alias>``) yielding one row per element of ``:batch``, with
    ``columns`` as its columns."""
    if connection.dialect.name == "postgresql":
        declared = ", ".join(f"{name} {type_}" for name, type_ in columns.items())
        return f"jsonb_to_recordset(CAST(:batch AS jsonb)) AS {alias}({declared})"
    if connection.dialect.name == "sqlite":
        fields = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in columns)
        return f"(SELECT {fields} FROM json_each(:batch)) AS {alias}"
    raise NotImplementedError(connection.dialect.name)  # pragma: no cover


def instant(connection: Connection, when: datetime) -> str:
    """``when`` as the JSON batch carries a timestamp: ISO 8601 with its offset on
    PostgreSQL; on SQLite the naive UTC text SQLAlchemy stores (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if connection.dialect.name == "sqlite":
        return aware.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return aware.isoformat()


def encode(rows: Iterable[Mapping[str, Any]]) -> str:
    """The JSON text of ``rows`` (a list of objects)."""
    return json.dumps(list(rows), separators=(",", ":"))

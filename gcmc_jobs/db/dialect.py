"""Dialect helpers for set-based SQL on PostgreSQL and SQLite: the upsert-capable ``insert``
and a portable string concatenation (used by the services and the run ledger)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gcmc_jobs.errors import ConfigurationError

__all__ = ["concat", "insert_for"]


def insert_for(session: Session) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``) for the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ConfigurationError(f"unsupported database {dialect!r}: use PostgreSQL or SQLite")


def concat(*parts: Any) -> ColumnElement[str]:
    """``a || b || …`` with every non-string part cast to text (portable)."""
    pieces: list[ColumnElement[str]] = [
        literal(p, String) if isinstance(p, str) else cast(p, String) for p in parts
    ]
    expression = pieces[0]
    for piece in pieces[1:]:
        expression = expression + piece
    return expression

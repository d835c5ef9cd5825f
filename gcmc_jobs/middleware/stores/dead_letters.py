"""Dead-letter stores: messages that failed for good, with everything needed to replay them.

:class:`SqlDeadLetterStore` writes the ``dead_letters`` table of its engine's mapping
(:func:`~gcmc_jobs.db.tables.tables_of`: in the mapping's package schema);
:class:`StubDeadLetterStore` keeps records in the process (tests, single process).
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gcmc_jobs.db.tables import tables_of

__all__ = [
    "DeadLetterFilter",
    "DeadLetterRecord",
    "DeadLetterStore",
    "SqlDeadLetterStore",
    "StubDeadLetterStore",
]


@dataclass(frozen=True)
class DeadLetterRecord:
    """One dead letter. ``id`` is ``None`` until stored; times are timezone-aware UTC."""

    message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    error_type: str
    error: str
    traceback: str | None
    attempts: int
    failed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None
    replayed_at: datetime | None = None
    replayed_as: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready plain values (times in ISO 8601)."""
        return {
            "id": self.id,
            "message_id": self.message_id,
            "queue": self.queue,
            "actor": self.actor,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": dict(self.options),
            "error_type": self.error_type,
            "error": self.error,
            "traceback": self.traceback,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat(),
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "replayed_as": self.replayed_as,
        }


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters: every given field must match (``error`` matches the error type).

    ``since``/``before`` bound ``failed_at``; ``replayed`` True/False selects replayed or
    not-yet-replayed ones (``None``: both).
    """

    actor: str | None = None
    queue: str | None = None
    error: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    replayed: bool | None = None

    def matches(self, record: DeadLetterRecord) -> bool:
        """Whether ``record`` passes this filter (what the SQL ``WHERE`` also says)."""
        return (
            (self.actor is None or record.actor == self.actor)
            and (self.queue is None or record.queue == self.queue)
            and (self.error is None or record.error_type == self.error)
            and (self.since is None or record.failed_at >= self.since)
            and (self.before is None or record.failed_at < self.before)
            and (self.replayed is None or (record.replayed_at is not None) == self.replayed)
        )


class DeadLetterStore(ABC):
    """Where dead letters are kept."""

    @abstractmethod
    def add(self, record: DeadLetterRecord) -> None:
        """Store ``record``; a message id already stored is left as it is (idempotent)."""

    @abstractmethod
    def find(
        self, where: DeadLetterFilter = DeadLetterFilter(), *, limit: int | None = None
    ) -> list[DeadLetterRecord]:
        """Matching records, newest first, at most ``limit``."""

    @abstractmethod
    def get(self, ids: Sequence[int]) -> list[DeadLetterRecord]:
        """The records with these ids (missing ones are left out), in id order."""

    @abstractmethod
    def mark_replayed(self, id: int, *, as_message_id: str, at: datetime) -> None:
        """Record that dead letter ``id`` was replayed as message ``as_message_id``."""

    @abstractmethod
    def purge(self, where: DeadLetterFilter) -> int:
        """Delete the matching records; returns how many."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class SqlDeadLetterStore(DeadLetterStore):
    """The ``dead_letters`` table of the engine's mapping (:func:`tables_of`: the runtime
    binds its engine to its tables). ``engine`` is an Engine or a function returning one
    (called at first use, so building the middleware opens no connection)."""

    def __init__(self, engine: Engine | Callable[[], Engine]) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine, resolved on first use."""
        if not isinstance(self._engine, Engine):
            self._engine = self._engine()
        return self._engine

    @property
    def table(self) -> Table:
        """The ``dead_letters`` table of the engine's mapping (its package schema)."""
        return tables_of(self.engine).dead_letters

    def add(self, record: DeadLetterRecord) -> None:
        engine = self.engine
        values = {
            "message_id": record.message_id,
            "queue": record.queue,
            "actor": record.actor,
            "args": list(record.args),
            "kwargs": dict(record.kwargs),
            "options": dict(record.options),
            "error_type": record.error_type[:200],
            "error": record.error,
            "traceback": record.traceback,
            "attempts": record.attempts,
            "failed_at": record.failed_at,
        }
        table = self.table
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                statement: Any = postgresql.insert(table).on_conflict_do_nothing(
                    index_elements=["message_id"]
                )
            elif engine.dialect.name == "sqlite":
                statement = sqlite.insert(table).on_conflict_do_nothing(
                    index_elements=["message_id"]
                )
            else:  # pragma: no cover - other dialects: check, then insert
                exists = connection.scalar(
                    select(table.c.id).where(table.c.message_id == record.message_id)
                )
                if exists is not None:
                    return
                statement = table.insert()
            connection.execute(statement, values)

    @staticmethod
    def _where(table: Table, where: DeadLetterFilter) -> list[Any]:
        c = table.c
        clauses: list[Any] = []
        if where.actor is not None:
            clauses.append(c.actor == where.actor)
        if where.queue is not None:
            clauses.append(c.queue == where.queue)
        if where.error is not None:
            clauses.append(c.error_type == where.error)
        if where.since is not None:
            clauses.append(c.failed_at >= where.since)
        if where.before is not None:
            clauses.append(c.failed_at < where.before)
        if where.replayed is True:
            clauses.append(c.replayed_at.is_not(None))
        elif where.replayed is False:
            clauses.append(c.replayed_at.is_(None))
        return clauses

    @staticmethod
    def _record(row: Row[Any]) -> DeadLetterRecord:
        return DeadLetterRecord(
            id=row.id,
            message_id=row.message_id,
            queue=row.queue,
            actor=row.actor,
            args=list(row.args),
            kwargs=dict(row.kwargs),
            options=dict(row.options),
            error_type=row.error_type,
            error=row.error,
            traceback=row.traceback,
            attempts=row.attempts,
            failed_at=_utc(row.failed_at),
            replayed_at=_utc(row.replayed_at) if row.replayed_at else None,
            replayed_as=row.replayed_as,
        )

    def find(
        self, where: DeadLetterFilter = DeadLetterFilter(), *, limit: int | None = None
    ) -> list[DeadLetterRecord]:
        table = self.table
        query = (
            select(table)
            .where(*self._where(table, where))
            .order_by(table.c.failed_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [self._record(row) for row in connection.execute(query)]

    def get(self, ids: Sequence[int]) -> list[DeadLetterRecord]:
        table = self.table
        query = select(table).where(table.c.id.in_(list(ids))).order_by(table.c.id)
        with self.engine.connect() as connection:
            return [self._record(row) for row in connection.execute(query)]

    def mark_replayed(self, id: int, *, as_message_id: str, at: datetime) -> None:
        table = self.table
        with self.engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.id == id)
                .values(replayed_at=at, replayed_as=as_message_id)
            )

    def purge(self, where: DeadLetterFilter) -> int:
        with self.engine.begin() as connection:
            table = self.table
            result = connection.execute(delete(table).where(*self._where(table, where)))
            return int(result.rowcount)


class StubDeadLetterStore(DeadLetterStore):
    """Records in a list of this process (tests, single process)."""

    def __init__(self) -> None:
        self.records: dict[int, DeadLetterRecord] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, record: DeadLetterRecord) -> None:
        with self._lock:
            if any(r.message_id == record.message_id for r in self.records.values()):
                return
            id = next(self._ids)
            self.records[id] = replace(record, id=id)

    def find(
        self, where: DeadLetterFilter = DeadLetterFilter(), *, limit: int | None = None
    ) -> list[DeadLetterRecord]:
        with self._lock:
            found = [r for r in self.records.values() if where.matches(r)]
        found.sort(key=lambda r: (r.failed_at, r.id or 0), reverse=True)
        return found[:limit] if limit is not None else found

    def get(self, ids: Sequence[int]) -> list[DeadLetterRecord]:
        with self._lock:
            return [self.records[id] for id in sorted(set(ids)) if id in self.records]

    def mark_replayed(self, id: int, *, as_message_id: str, at: datetime) -> None:
        with self._lock:
            if id in self.records:
                self.records[id] = replace(
                    self.records[id], replayed_at=at, replayed_as=as_message_id
                )

    def purge(self, where: DeadLetterFilter) -> int:
        with self._lock:
            doomed = [id for id, r in self.records.items() if where.matches(r)]
            for id in doomed:
                del self.records[id]
        return len(doomed)

"""Outbox stores: the rows hosts committed (:mod:`gcmc_jobs.outbox`), taken by the relay in
batches.

A batch is taken in one transaction: the rows are locked (PostgreSQL: ``SELECT … FOR UPDATE
SKIP LOCKED``, so two relays never take the same row and never wait for each other), handed
to the relay, and deleted when the relay's block ends normally. If the block raises (the
broker is down) the transaction rolls back and the rows stay for the next attempt.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, any_, bindparam, delete, select, text
from sqlalchemy.types import ARRAY

from gcmc_jobs.db.tables import tables_of

__all__ = ["NOTIFY_CHANNEL", "OutboxRow", "OutboxStore", "SqlOutboxStore", "StubOutboxStore"]

#: The PostgreSQL channel an insert into ``outbox_messages`` notifies at commit (a trigger of
#: the migration ``0003``).
NOTIFY_CHANNEL = "gcmc_jobs_outbox"


@dataclass(frozen=True)
class OutboxRow:
    """One committed outbox message: its row id, its encoded Dramatiq message, and the epoch
    ms before which it must not run (None: at once)."""

    id: int
    body: str
    not_before_ms: int | None = None


class OutboxStore(ABC):
    """Where committed outbox messages wait for the relay."""

    @abstractmethod
    @contextmanager
    def batch(self, limit: int) -> Iterator[list[OutboxRow]]:
        """Lock up to ``limit`` committed rows, oldest first, skipping rows another relay
        holds; yield them; delete them when the block ends normally (left in place if it
        raises)."""

    def wait(self, timeout_ms: int, stop: threading.Event) -> None:
        """Return after ``timeout_ms``, when ``stop`` is set, or earlier when new rows may have
        been committed (the SQL store listens on PostgreSQL)."""
        stop.wait(timeout_ms / 1000)

    def wake(self) -> None:  # noqa: B027 - the default wait returns when stop is set
        """End a :meth:`wait` in progress now: the relay is stopping and has set ``stop``."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing open
        """Release what the store holds open (a listening connection)."""


class SqlOutboxStore(OutboxStore):
    """The ``outbox_messages`` table, on the engine ``engine()`` returns (called on first use,
    so building the store opens no connection). On PostgreSQL :meth:`wait` LISTENs on
    :data:`NOTIFY_CHANNEL` on a connection of its own, so a commit wakes the relay at once."""

    def __init__(self, engine: Engine | Callable[[], Engine]) -> None:
        self._engine = engine
        self._listener: Any = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine if isinstance(self._engine, Engine) else self._engine()

    @contextmanager
    def batch(self, limit: int) -> Iterator[list[OutboxRow]]:
        engine = self.engine
        table = tables_of(engine).outbox_messages  # the mapping's (its package schema)
        query = (
            select(table.c.id, table.c.body, table.c.not_before_ms)
            .order_by(table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with engine.begin() as connection:
            rows = [OutboxRow(r.id, r.body, r.not_before_ms) for r in connection.execute(query)]
            yield rows
            if rows:
                ids = [r.id for r in rows]
                if engine.dialect.name == "postgresql":  # one array parameter, not one each
                    taken = table.c.id == any_(bindparam("ids", ids, type_=ARRAY(table.c.id.type)))
                else:
                    taken = table.c.id.in_(ids)
                connection.execute(delete(table).where(taken))

    def wait(self, timeout_ms: int, stop: threading.Event) -> None:
        listener = self._listening()
        if listener is None:
            stop.wait(timeout_ms / 1000)
            return
        if stop.is_set():  # set before LISTEN began: wake() found no listener to notify
            return
        try:
            for _ in listener.notifies(timeout=timeout_ms / 1000, stop_after=1):
                break
        except Exception:  # the server went away: poll until it is back
            self._drop_listener()
            stop.wait(timeout_ms / 1000)

    def wake(self) -> None:
        """A LISTENing :meth:`wait` does not see ``stop``: a notification on the channel ends
        it (without one a worker's shutdown waited up to ``poll_ms``). Relays of other
        processes listening too take one look at the table. If the server is away the wait
        ends at its timeout, as before."""
        if self._listener is None:
            return
        # From a thread of its own: a server that stopped answering must not hold up the
        # worker's shutdown (PostgreSQL connections here have no connect timeout; the
        # relay's join bounds the wait, as before).
        threading.Thread(target=self._notify, name="gcmc-outbox-wake", daemon=True).start()

    def _notify(self) -> None:
        with contextlib.suppress(Exception), self.engine.begin() as connection:
            connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})

    def _listening(self) -> Any:
        """A psycopg connection LISTENing on the channel (PostgreSQL with psycopg 3 only)."""
        with self._lock:
            if self._listener is not None:
                return self._listener
            engine = self.engine
            if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
                return None
            try:
                raw = engine.raw_connection()
                connection = raw.driver_connection
                raw.detach()  # its own connection, never returned to the pool
                assert connection is not None
                connection.autocommit = True
                connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except Exception:
                return None
            self._listener = connection
            return connection

    def _drop_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):  # already broken
                listener.close()

    def close(self) -> None:
        self._drop_listener()


class StubOutboxStore(OutboxStore):
    """Rows in the process (tests, and the stack actors are declared on)."""

    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []
        self._lock = threading.Lock()
        self._next_id = 1

    def add(self, body: str, not_before_ms: int | None = None) -> OutboxRow:
        """Add a committed row."""
        with self._lock:
            row = OutboxRow(self._next_id, body, not_before_ms)
            self._next_id += 1
            self.rows.append(row)
            return row

    @contextmanager
    def batch(self, limit: int) -> Iterator[list[OutboxRow]]:
        with self._lock:  # one relay at a time, as row locks would make it
            taken = self.rows[:limit]
            yield list(taken)
            taken_ids = {row.id for row in taken}
            self.rows = [row for row in self.rows if row.id not in taken_ids]

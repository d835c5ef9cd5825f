"""Engines and sessions: how an engine is built (the runtime owns the process's), sessions per
unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["make_engine", "make_sessionmaker", "session_scope"]


def make_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, jit: bool = False, **kwargs: Any
) -> Engine:
    """Build an engine for ``url`` with the pool and pragmas gcmc-jobs expects.

    PostgreSQL gets a bounded pool (``pool_size`` + ``max_overflow`` connections per process,
    checked before use so a restarted server does not fail the next job), and its sessions
    run with ``jit = off`` unless ``jit`` is True: the jobs' statements are per tenant and
    take milliseconds, and PostgreSQL's default JIT threshold (a plan cost of 100,000, which
    the compliance refresh of a 1,000-client tenant passes) compiled them for longer than
    they ran (measured: 14 ms of JIT for a 19 ms refresh, 35 ms for the refresh detecting
    level changes; see benchmarks/README.md#webhooks). SQLite gets foreign keys turned on
    and a busy timeout, so the demo's threads wait for each other's writes.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    if not jit:
        # A connection option (no statement per job, not undone by a rolled-back
        # transaction), added to any ``options`` the URL or the caller already set.
        connect_args = dict(kwargs.pop("connect_args", None) or {})
        given = connect_args.get("options") or parsed.query.get("options") or ""
        if isinstance(given, tuple):  # a query key given twice
            given = " ".join(given)
        connect_args["options"] = f"{given} -c jit=off".strip()
        kwargs["connect_args"] = connect_args
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        **kwargs,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory that does not expire objects on commit (jobs return plain values)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back when it raises.

    The session is configured as :func:`make_sessionmaker`'s are, but built directly: a
    ``sessionmaker`` defines a new ``Session`` subclass each time it is built and SQLAlchemy
    then sets up that class's event dispatch, CPU that every job paid when the factory was
    built per call.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session

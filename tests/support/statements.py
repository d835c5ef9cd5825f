"""Count what a block sends to the database: the suite's constant-statement tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

__all__ = ["recorded_statements"]


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL of every statement ``engine`` executes inside the block, in order."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)

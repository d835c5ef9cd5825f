"""A throwaway PostgreSQL database for a benchmark: created on entry, dropped on exit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, make_url, text

from gcmc_jobs.db.engine import make_engine

__all__ = ["bench_database"]


@contextmanager
def bench_database(server_url: str, prefix: str, **engine_options: Any) -> Iterator[Engine]:
    """An engine on a new database ``gcmc_bench_<prefix>_<random>`` of ``server_url``'s
    server (its user may ``CREATE DATABASE``), dropped at the end whatever happens (``WITH
    (FORCE)``: connections a failed run left open do not keep it). ``engine_options`` go to
    :func:`~gcmc_jobs.db.engine.make_engine`. The caller migrates it if it needs the tables."""
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"gcmc_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, **engine_options)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

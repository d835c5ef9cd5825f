"""Database access: the models, engines and sessions, and the packaged migrations."""

from __future__ import annotations

from gcmc_jobs.db.engine import make_engine, make_sessionmaker, session_scope
from gcmc_jobs.db.migrate import upgrade

__all__ = ["make_engine", "make_sessionmaker", "session_scope", "upgrade"]

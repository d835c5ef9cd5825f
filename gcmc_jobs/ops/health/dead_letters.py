"""The ``dead_letters`` health check: dead letters waiting to be replayed or purged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from gcmc_jobs.db.tables import tables_of
from gcmc_jobs.ops.health.report import CheckResult
from gcmc_jobs.settings import Settings

__all__ = ["check_dead_letters"]


def check_dead_letters(settings: Settings, engine: Engine | None, now: datetime) -> CheckResult:
    """A warning, with their number, when dead letters wait (never unhealthy)."""
    assert engine is not None
    dead_letters = tables_of(engine).dead_letters  # the mapping's (its package schema)
    with engine.connect() as connection:
        waiting = connection.execute(
            select(func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.replayed_at.is_(None))
        ).scalar_one()
    if waiting:
        return CheckResult(
            "warning",
            f"{waiting} dead letter(s) wait to be replayed or purged",
            {"waiting": waiting},
        )
    return CheckResult("ok", "no dead letter waiting", {"waiting": 0})

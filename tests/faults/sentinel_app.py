"""What the Sentinel scenario's ``dramatiq`` worker loads next to ``gcmc_jobs.worker``: one
actor that records each run in PostgreSQL (``sentinel_probe_runs``), so the scenario can
count which messages ran, and how many times."""

from __future__ import annotations

from sqlalchemy import text

import gcmc_jobs

QUEUE = "sentinel_probe"
RUNS_DDL = "CREATE TABLE IF NOT EXISTS sentinel_probe_runs (n integer NOT NULL)"


@gcmc_jobs.actor(actor_name="sentinel_probe", queue_name=QUEUE, max_retries=10, min_backoff=100)
def sentinel_probe(n: int) -> None:
    with gcmc_jobs.current().engine.begin() as connection:
        connection.execute(text("INSERT INTO sentinel_probe_runs (n) VALUES (:n)"), {"n": n})
